"""Process management for `hub up` and friends: the embedded Redis and the supervisor of child processes."""

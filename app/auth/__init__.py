"""Authentication: password hashing, login sessions, attempt limiting."""

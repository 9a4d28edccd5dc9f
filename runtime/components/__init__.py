"""Components as the runtime sees them: specs resolved by name, and the built-in library."""

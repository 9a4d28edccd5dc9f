"""Where steps run besides inline: warm runner processes (and, next, containers)."""

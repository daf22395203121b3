"""CLI sub-commands; each module has ``register(subparsers)``. See :mod:`parsner.cli`."""

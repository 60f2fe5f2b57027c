"""Sub-commands of the ``speakerid`` CLI, one module per area; each has ``register(subparsers)``.

A handler receives the parsed ``argparse.Namespace`` and returns an exit status (or ``None`` for OK). Handlers
only parse, call the public Python API, and print.
"""

"""The ``isu`` command line (typer). Argument parsing and messages only; the work is in ``isu``."""

"""The ``isu`` command line (typer). Argument parsing and messages only; the work is in ``isu``."""


def main() -> None:
    """The console script: ``isu.cli.main.run``, loaded here so that Ctrl-C while the toolkit loads
    (most of a second) says so and exits 130 too, instead of a traceback of whatever was importing."""
    import sys

    try:
        from .main import run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before anything was done\n")
        raise SystemExit(130) from None
    run()

"""The command line: parses arguments, calls the library, prints results.

Thin by design (after sqlite-utils): every user-caused failure arrives as an ``IsuError`` and
leaves as one line on stderr with the error's exit code. Commands live in the modules listed in
``COMMAND_MODULES``; each exposes ``register(app)``.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

try:
    from typer._click.exceptions import ClickException  # typer ≥ 0.2x carries its own click
except ImportError:  # pragma: no cover - older typer
    from click.exceptions import ClickException

from isu import __version__
from isu.errors import EXIT_CODES, IsuError
from isu.keys import default_key_path
from isu.store import default_db_path

__all__ = ["app", "run", "State", "emit", "error_line", "fail"]


class _Console(Console):
    """Off a terminal (a pipe, a file, a script's capture) a line is as long as it is: rich would
    otherwise wrap messages and cut table cells at 80 columns (or $COLUMNS)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(1 << 20, size.height)


err = _Console(stderr=True, highlight=False)
out = _Console(highlight=False)

EPILOG = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())

app = typer.Typer(
    name="isu",
    help="Individual-based systematic follow-up (ISU): import follow-up exports, publish safe aggregates, dashboards, regional pooling.",
    no_args_is_help=True,
    add_completion=False,
    epilog=EPILOG,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    db: Path
    key_file: Path


def version_callback(value: bool) -> None:
    if value:
        out.print(f"isu {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    db: Optional[Path] = typer.Option(None, "--db", help="Workspace DuckDB file (env ISU_DB; default ./isu.duckdb).", readable=False),
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="Pool key file (env ISU_KEY_FILE; default ./isu.key).", readable=False),
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit."),
) -> None:
    """ISU toolkit: individual-based systematic follow-up for municipal social services."""
    ctx.obj = State(db=db or default_db_path(), key_file=key_file or default_key_path())


def emit(summary: dict[str, Any], as_json: bool, text: str | None = None) -> None:
    """Print one JSON object (``--json``) or the human text."""
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, default=str) + "\n")
    elif text is not None:
        out.print(text)


def _one_line(message: str) -> str:
    """A message on one line (DuckDB's errors, say, come on several)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def error_line(message: str) -> None:
    """The one line on stderr that every user-caused failure gets; anything in it shaped like a
    person id (a file or folder named after a client, say) masked."""
    from isu.pseudonym import mask_ids  # here: compiling its patterns costs every start-up 0.01 s

    err.print(f"[bold red]error:[/] {escape(mask_ids(_one_line(message)))}", soft_wrap=True)


def error_object(message: str, exit_code: int, kind: str) -> dict[str, Any]:
    """What an error exit prints with ``--json``, whatever the command: one object with the message
    (masked, on one line), the error's type and the exit code (a file's entry in a summary has the same keys)."""
    from isu.pseudonym import mask_ids

    return {"error": mask_ids(_one_line(message)), "type": kind, "exit_code": exit_code}


def fail(message: str, code: int = 1) -> None:
    """Stop with one line (and, with --json, the error object) and exit ``code``."""
    e = IsuError(message)
    e.exit_code = code
    raise e


COMMAND_MODULES = ("isu.cli.workspace", "isu.cli.imports", "isu.cli.publish", "isu.cli.dashboard", "isu.cli.pool", "isu.cli.demo")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as e:  # a command module not written yet
        if e.name != _name:
            raise
        continue
    _module.register(app)


def _json_requested(args: list[str]) -> bool:
    """``--json`` among the options (before a ``--``). Read from the raw arguments: a usage error
    is found before any command runs, and still gets its JSON object."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _error_exit(message: str, code: int, kind: str, as_json: bool) -> None:
    error_line(message)
    if as_json:
        emit(error_object(message, code, kind), True)
    sys.exit(code)


def run() -> None:
    """Console-script entry: IsuError → one line + its exit code; Ctrl-C → 130. With ``--json``
    every error exit (usage errors too) also prints one JSON object on stdout (``error_object``)."""
    as_json = _json_requested(sys.argv[1:])
    try:
        if not as_json:
            app()  # typer prints usage errors in its box, exit 2
            return
        try:
            code = app(standalone_mode=False)
        except ClickException as e:  # unknown option, missing argument, bad value
            _error_exit(e.format_message(), e.exit_code, "UsageError" if e.exit_code == 2 else type(e).__name__, True)
        sys.exit(code if isinstance(code, int) else 0)
    except IsuError as e:
        _error_exit(str(e), e.exit_code, type(e).__name__, as_json)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was changed by the unfinished step")
        sys.exit(130)

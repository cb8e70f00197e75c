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
from rich.console import Console
from rich.markup import escape

from isu import __version__
from isu.errors import EXIT_CODES, IsuError
from isu.keys import default_key_path
from isu.store import default_db_path

__all__ = ["app", "run", "State", "emit", "error_line", "fail"]

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

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
    db: Optional[Path] = typer.Option(None, "--db", help="Workspace DuckDB file (env ISU_DB; default ./isu.duckdb).",),
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="Pool key file (env ISU_KEY_FILE; default ./isu.key).",),
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


def error_line(message: str) -> None:
    """The one line on stderr that every user-caused failure gets; anything in it shaped like a
    person id (a file or folder named after a client, say) masked."""
    from isu.pseudonym import mask_ids  # here: compiling its patterns costs every start-up 0.01 s

    err.print(f"[bold red]error:[/] {escape(mask_ids(message))}", soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    error_line(message)
    raise typer.Exit(code)


COMMAND_MODULES = ("isu.cli.workspace", "isu.cli.imports", "isu.cli.publish", "isu.cli.dashboard", "isu.cli.pool", "isu.cli.demo")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as e:  # a command module not written yet
        if e.name != _name:
            raise
        continue
    _module.register(app)


def run() -> None:
    """Console-script entry: IsuError → one line + its exit code; Ctrl-C → 130."""
    try:
        app()
    except IsuError as e:
        error_line(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was changed by the unfinished step")
        sys.exit(130)

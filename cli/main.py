"""The command line: parses arguments, calls the library, prints results.

Thin by design (after sqlite-utils): every user-caused failure arrives as an ``IsuError`` and
leaves as one line on stderr with the error's exit code. Commands live in the modules listed in
``COMMAND_MODULES``; each exposes ``register(app)``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import duckdb
import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

try:
    from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError, NoSuchOption  # typer ≥ 0.2x carries its own click
except ImportError:  # pragma: no cover - older typer
    from click.exceptions import BadParameter, ClickException, NoArgsIsHelpError, NoSuchOption
from typer.core import TyperGroup

from isu import __version__
from isu.errors import EXIT_CODES, IsuError
from isu.keys import default_key_path
from isu.store import default_db_path

__all__ = ["app", "run", "State", "emit", "error_line", "fail"]


class _PipeClosed(Exception):
    """stdout's reader went away (``isu validate FILE | head -1``). Not an OSError: typer's runner
    turns a broken pipe into a silent exit 1; this reaches ``run`` instead."""


def _on_broken_pipe(self: Console) -> None:
    """Rich's own exits 1 without a word; ``run`` decides (``_stop_quietly``). Set on rich's
    ``Console`` itself (its hook for this), since typer prints help through a console of its own."""
    self.quiet = True
    raise _PipeClosed()


Console.on_broken_pipe = _on_broken_pipe


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


class _Interrupted(Exception):
    """Ctrl-C. Not a KeyboardInterrupt: typer's runner turns that into a silent exit 130."""


class _Group(TyperGroup):
    """The top command: a closed stdout found while parsing (``--help``) or running leaves as
    ``_PipeClosed``, Ctrl-C as ``_Interrupted``."""

    def make_context(self, *args: Any, **kwargs: Any):
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise _PipeClosed() from None

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None
        except KeyboardInterrupt:
            raise _Interrupted() from None
        except (duckdb.InterruptException, RuntimeError) as e:  # DuckDB's query stopped by Ctrl-C
            if isinstance(e, duckdb.InterruptException) or str(e) == "Query interrupted":
                raise _Interrupted() from None
            raise


app = typer.Typer(
    cls=_Group,
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


def _usage_message(e: ClickException) -> str:
    """Click's message on one line, in the words of the rest: the command, what is wrong (with
    click's suggestion), where the help is: ``isu import: no such option: --nosuch (see isu import --help)``."""
    if isinstance(e, BadParameter) and e.param is not None:
        _in_plain_words(e)
    if isinstance(e, NoSuchOption) and e.possibilities:
        near = sorted(e.possibilities)
        text = f"{e.message}; did you mean {near[0] if len(near) == 1 else 'one of ' + ', '.join(near)}?"
    else:
        text = e.format_message().replace(". Did you mean", "; did you mean")
    text = _one_line(text).rstrip(".")
    if text[1:2].islower():
        text = text[0].lower() + text[1:]
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(sys.argv[1:])  # click gives some errors no context
    return f"{path}: {text} (see {path} --help)"


#: typer converts option values with pydantic, whose words are a programmer's: what they mean here
_PLAIN = {"Input should be a valid integer": "is not a whole number", "Input should be a valid number": "is not a number"}


def _in_plain_words(e: BadParameter) -> None:
    """``--threshold abc``: "'abc' is not a whole number", the value given and what it should be."""
    said = next((plain for words, plain in _PLAIN.items() if e.message.startswith(words)), None)
    if said is None:
        return
    opts, given, args = e.param.opts, None, iter(sys.argv[1:])
    for arg in args:  # the last one given counts, as for click
        if arg == "--":
            break
        if arg in opts:
            given = next(args, given)
        elif arg.startswith(tuple(o + "=" for o in opts if o.startswith("--"))):
            given = arg.split("=", 1)[1]
    e.message = f"{given!r} {said}" if given is not None else said


def _command_path(args: list[str]) -> str:
    """``isu import`` for ``isu --db x.duckdb import --profile``: the commands the arguments name."""
    from typer.main import get_command

    cmd, path, rest = get_command(app), ["isu"], iter(args)
    for arg in rest:
        if arg == "--":
            break
        if arg.startswith("-"):
            opt = next((o for o in cmd.params if arg in getattr(o, "opts", ())), None)
            if opt is not None and not getattr(opt, "is_flag", True):
                next(rest, None)  # its value
            continue
        cmd = getattr(cmd, "commands", {}).get(arg)
        if cmd is None:
            break
        path.append(arg)
    return " ".join(path)


def _stop_quietly() -> None:
    """The reader of stdout closed it: stop as ``head``'s writer does, without a word. stdout is
    pointed at /dev/null first, so that the interpreter's flush at exit does not fail again. Exit
    141 (128 + SIGPIPE), what a shell shows for a tool that SIGPIPE stopped: the command did not
    finish (an import of several files stops at the file whose summary could not be printed), so
    0 would claim too much; under ``set -o pipefail`` it fails as ``yes | head -1`` does."""
    try:
        _devnull_at(sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a test's capture)
        pass
    sys.exit(141)


def run() -> None:
    """Console-script entry: IsuError → one line + its exit code; a usage error → one line, exit 2;
    a closed stdout → silence, exit 141; Ctrl-C → 130. With ``--json`` every error exit (usage
    errors too) also prints one JSON object on stdout (``error_object``). Started with stdout
    closed (``>&-``), nothing runs: its summary would go nowhere, and the first file the command
    opened would take stdout's place."""
    if not _writable(2):  # closed: errors are lost, but no file the command opens takes its place
        sys.stderr = _devnull_at(2)
    if not _writable(1):
        sys.stdout = _devnull_at(1)
        _error_exit("standard output is closed (>&-), so nothing was run; send it to a file or to /dev/null instead",
                    2, "UsageError", False)
    try:
        try:
            _run(_json_requested(sys.argv[1:]))
        finally:
            sys.stdout.flush()  # here, so that a closed pipe is caught below, not at the interpreter's exit
    except (_PipeClosed, BrokenPipeError):
        _stop_quietly()


def _writable(fd: int) -> bool:
    """Whether ``fd`` is open for writing: a closed stdout may be closed, or hold a file opened
    for reading in its place (a shell script that started the interpreter, reading itself)."""
    if os.name != "posix":
        return True
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    except OSError:
        return False


def _devnull_at(fd: int):
    """/dev/null opened on the file descriptor ``fd`` (closed or not writable), as a text stream."""
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)
    return open(fd, "w", closefd=False)


def _run(as_json: bool) -> None:
    try:
        # standalone_mode=False: click's errors come here, not to typer's box of several lines
        code = app(prog_name="isu", standalone_mode=False)
    except NoArgsIsHelpError:  # ``isu`` or ``isu key`` alone: the help was printed
        sys.exit(2)
    except ClickException as e:  # unknown option, missing argument, bad value
        _error_exit(_usage_message(e), e.exit_code, "UsageError" if e.exit_code == 2 else type(e).__name__, as_json)
    except typer.Abort:
        _error_exit("aborted", 1, "Abort", as_json)
    except IsuError as e:
        _error_exit(str(e), e.exit_code, type(e).__name__, as_json)
    except (KeyboardInterrupt, _Interrupted):
        err.print("interrupted; nothing was changed by the unfinished step")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

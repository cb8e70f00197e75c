"""Every command has --help text and a line in the README (after sqlite-utils' documentation test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from isu.cli.main import app

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    cmds = [prefix + (c.name or c.callback.__name__,) for c in group.registered_commands]
    for sub in group.registered_groups:
        cmds += _commands(sub.typer_instance, prefix + (sub.name,))
    return cmds


COMMANDS = _commands(app)


def test_contract_commands_exist():
    names = {" ".join(c) for c in COMMANDS}
    for required in ("init", "key new", "import", "validate", "status", "publish", "sql", "dashboard",
                     "pool export", "pool import", "demo"):
        assert required in names, f"isu {required} is part of the command-line contract"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    body = result.output.split("Usage:", 1)[1]
    lines = [ln for ln in body.splitlines()[1:] if ln.strip(" │╭╮╰╯─")]
    assert lines, f"isu {' '.join(command)} has no help text"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_documented_in_readme(command):
    assert f"isu {' '.join(command)}" in README, f"README does not mention `isu {' '.join(command)}`"

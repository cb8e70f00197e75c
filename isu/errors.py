"""The toolkit's exceptions. The CLI turns each into one clear line and an exit code.

Every error a user can cause is an ``IsuError``: its message says what went wrong, where, and what
to do. Anything else escaping is a bug in the toolkit.
"""

from __future__ import annotations

__all__ = [
    "IsuError",
    "UsageError",
    "InputError",
    "ProfileMismatch",
    "WorkspaceBusy",
    "WorkspaceError",
    "WorkspaceReadOnly",
    "KeyFileError",
    "PackageError",
    "DisclosureError",
    "MissingExtra",
    "EXIT_CODES",
]


class IsuError(Exception):
    """Base for errors caused by input, files or the environment (never a traceback)."""

    exit_code = 1


class UsageError(IsuError):
    """Options that cannot work together or name nothing valid (a municipality code that does not
    exist, a rejects file that would overwrite the export), or an output (``--rejects``, ``--out``,
    a key file) where this user cannot write."""

    exit_code = 2


class InputError(IsuError):
    """A file that cannot be read at all (not a table, unknown encoding, empty, missing)."""

    exit_code = 3


class ProfileMismatch(InputError):
    """The file's header does not fit the profile: a required column is missing or unknown."""


class WorkspaceError(IsuError):
    """The DuckDB workspace is missing, damaged or from an incompatible version."""

    exit_code = 4


class WorkspaceBusy(WorkspaceError):
    """Another process is writing to the workspace."""

    exit_code = 5


class WorkspaceReadOnly(WorkspaceError):
    """The workspace (or its folder) cannot be written: reading it works, importing does not."""


class KeyFileError(IsuError):
    """The pool key is missing, unreadable, too open or malformed."""

    exit_code = 6


class PackageError(IsuError):
    """A pool package that is truncated, tampered with, made with another key or schema."""

    exit_code = 7


class DisclosureError(IsuError):
    """The audit found a hidden cell that published cells would reveal: nothing was published."""

    exit_code = 8


class MissingExtra(IsuError):
    """An optional dependency is not installed; the message says which extra to install."""

    exit_code = 9


#: Documented exit codes (README, ``isu --help``). 2 is usage (typer); 10 is "some rows rejected".
EXIT_CODES = {
    0: "success",
    1: "error",
    2: "usage error (unknown option, missing argument, an option value that cannot work, an output path that cannot be written)",
    3: "input file cannot be read or does not fit the profile",
    4: "workspace missing, damaged, incompatible or read-only",
    5: "workspace busy (another process is using it)",
    6: "pool key missing or invalid",
    7: "pool package refused",
    8: "publication refused: the audit found a disclosive table",
    9: "optional dependency missing",
    10: "finished, but some rows were rejected (see the rejects file)",
    130: "interrupted (Ctrl-C); the file being imported changed nothing",
    141: "stopped because the reader of its output closed it (e.g. | head)",
}

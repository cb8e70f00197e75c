"""Where an output can go: checked before any work, so that a run does not fail at its end."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["exists", "missing_folder", "present", "unwritable_folder"]


def unwritable_folder(path: Path) -> Path | None:
    """None when ``path`` (a folder or a file's parent) exists, or can be made, in a folder this
    user can write in; else the folder that stops it: its nearest existing ancestor (a file, or a
    folder without write permission), or ``path`` itself when nothing of it exists."""
    folder = next((p for p in [path, *path.parents] if p.exists()), None)
    if folder is not None and folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return None
    return folder or path


def missing_folder(file: Path) -> Path | None:
    """The folder that ``file`` would need and that does not exist, when more than ``file``'s own
    folder is missing: that one is made (``mkdir``), a tree is not (``mkdir -p``), since a typo in
    a folder's name would make one silently. None when nothing, or only the file's folder, is missing."""
    folder = file.parent
    if folder.exists() or folder.parent.exists():
        return None
    return folder


def exists(path: Path) -> bool | None:
    """Whether ``path`` exists; None when that cannot be told (a folder on the way without
    permission), where ``Path.exists`` would raise."""
    try:
        return path.exists()
    except PermissionError:
        return None


def present(path: Path) -> bool:
    """``path`` exists, or whether it does cannot be told: opening it then says why it cannot be read."""
    return exists(path) is not False

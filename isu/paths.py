"""Where an output can go: checked before any work, so that a run does not fail at its end."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["unwritable_folder"]


def unwritable_folder(path: Path) -> Path | None:
    """None when ``path`` (a folder or a file's parent) exists, or can be made, in a folder this
    user can write in; else the folder that stops it: its nearest existing ancestor (a file, or a
    folder without write permission), or ``path`` itself when nothing of it exists."""
    folder = next((p for p in [path, *path.parents] if p.exists()), None)
    if folder is not None and folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return None
    return folder or path

"""SQL text the toolkit writes itself: a string literal, quoted in one place."""

from __future__ import annotations

__all__ = ["string"]


def string(text: str) -> str:
    """``text`` as a SQL string literal (each quote doubled): a path, a code, a setting's value."""
    return "'" + text.replace("'", "''") + "'"

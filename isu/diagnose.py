"""Why an export could not be read, said with what to do about it.

``diagnose(path)`` is asked only after the reader (``isu.read``) has refused a file: it looks at
the file again for the causes whose plain error says too little to act on (a folder given for a
file, no permission to read, a text file or an old workbook named ``.xlsx``, a stray carriage
return inside the header row) and returns an ``InputError`` that names the cause and the fix, or
None when none of them is the cause (the reader's own message stands). It costs nothing on files
that import, and it never finds a "cause" in a file that the reader could read.
"""

from __future__ import annotations

import re
from pathlib import Path

from isu.errors import InputError
from isu.read import cr_line_ends_in

__all__ = ["diagnose"]

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls) and other OLE2 compound files
_ZIP = b"PK\x03\x04"
_DELIMITERS = re.compile(r"[;,\t|]")
_HEAD = 1 << 16  # the bytes looked at


def diagnose(path: str | Path) -> InputError | None:
    """The error to report for ``path`` instead of the reader's, or None (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        return InputError(f"{p} is a folder, not an export file; give the export files in it instead, e.g. {p / '*.csv'}")
    if not p.exists():
        where = "" if p.is_absolute() else f" (a relative path is read from the current folder, {Path.cwd()})"
        return InputError(f"{p}: no such file{where}; check the name and folder")
    try:
        with p.open("rb") as f:
            head = f.read(_HEAD)
    except PermissionError:
        return InputError(f"{p}: no permission to read this file; ask its owner (or IT support) for read access, "
                          "or save the export again to a folder of yours")
    except OSError:
        return None
    if head.startswith(_OLE2):
        return InputError(f"{p} is an Excel 97-2003 workbook (.xls), which isu does not read; open it in Excel and "
                          "save it as .xlsx (Excel Workbook) or CSV UTF-8")
    if p.suffix.lower() in (".xlsx", ".xlsm") and head and not head.startswith(_ZIP):
        held = "plain text" if b"\0" not in head[:4096] else "neither a workbook nor text"
        return InputError(f"{p} is named {p.suffix} but is not an Excel workbook (it holds {held}); if it is a CSV "
                          "export, rename it to .csv; otherwise open it in Excel and save it again as .xlsx")
    if head.startswith(_ZIP) or b"\0" in head[:4096]:  # a workbook, or binary: the reader's message stands
        return None
    return _stray_cr(p, head)


def _stray_cr(p: Path, head: bytes) -> InputError | None:
    """A carriage return inside the (unquoted) header row: the reader sees the row end there."""
    if b"\n" not in head or cr_line_ends_in(head, whole=len(head) < _HEAD):  # lines ending in CRs alone (Excel for
        return None  # Mac, LFs only inside quoted values): the reader handles those, as it tells them (``isu.read``)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    at = line.find(b"\r")
    if at < 0 or b'"' in line[:at]:  # a quoted name may hold a line break
        return None
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff")
    before = text[: text.find("\r")]
    column = len(_DELIMITERS.findall(before)) + 1
    name = _DELIMITERS.split(text)[column - 1].replace("\r", "")
    return InputError(f"{p}: the header row has a stray line break (a carriage return, CR) in column {column} ({name!r}); "
                      "delete it in a text editor, or fix that header cell where the export is made, then import the file again")

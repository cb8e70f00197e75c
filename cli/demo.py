"""``isu demo``: synthetic exports → import → publish → dashboard, in one folder.

Leaves ``isu.duckdb``, ``isu.key``, the sample exports, the rejects files, the published tables
and ``isu-dashboard.html`` in DIR (default: the current folder), and prints the path to open.
Running it again in the same folder changes nothing in the store (the imports are recognised by
their SHA-256) and makes a fresh publication and dashboard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from isu.errors import UsageError, WorkspaceReadOnly
from isu.keys import load_key, new_key
from isu.pseudonym import mask_ids

from .main import emit, out


def _demo_folder(dir_: Optional[Path]) -> Path:
    """DIR (created if missing) or the current folder: a folder this user can write in. Not one:
    exit 2 (a --dir that names a file); cannot be written: exit 4, as for a workspace in a read-only folder."""
    folder = (dir_ or Path.cwd()).resolve()
    named = "the current folder" if dir_ is None else f"--dir {dir_}"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--dir {dir_} is a file, not a folder; name a folder for the demo (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as e:
        raise WorkspaceReadOnly(f"cannot create the demo folder {folder}: {e.strerror}; pass --dir with a folder you can write in") from None
    except OSError as e:  # a file on the way (--dir file.txt/sub)
        raise UsageError(f"cannot create the demo folder {folder}: {e.strerror}; pass --dir with another folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WorkspaceReadOnly(f"cannot write in {folder} ({named}); run isu demo in a folder you can write in, or pass --dir FOLDER")
    return folder


def demo(
    dir_: Optional[Path] = typer.Option(None, "--dir", help="Folder for the demo workspace and outputs (default: current folder)."),
    lang: str = typer.Option("sv", "--lang", help="Dashboard language: sv or en."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Run the whole toolkit on synthetic data and print the dashboard's path.

    The sample data are synthetic (no real person): the ten Södertörn municipalities and five
    rural Jämtland municipalities, with a few planted bad rows to show how rejects are reported.
    """
    from isu.dashboards.report import build_dashboard
    from isu.importer import import_file
    from isu.publish import publish
    from isu.sample_data import generate, load_manifest
    from isu.store import connect

    folder = _demo_folder(dir_)
    key_path = folder / "isu.key"
    key = load_key(key_path) if key_path.exists() else new_key(key_path)
    data = folder / "sample_exports"
    generate(data)
    manifest = load_manifest(data)
    db = folder / "isu.duckdb"
    con = connect(db, create=True)
    imported = []
    try:
        for entry in manifest["files"]:
            r = import_file(con, data / entry["file"], profile=entry["profile"], key=key,
                            rejects_path=folder / "rejects" / f"{Path(entry['file']).stem}.rejects.csv")
            imported.append(r)
            if not json_:
                state = "already imported" if r.already_imported else f"read {r.rows_read}, accepted {r.rows_accepted}, rejected {r.rows_rejected}"
                out.print(f"  imported {entry['file']}: {state}")
        pub = publish(con, k=5, out=folder / "published", fmt="csv")
    finally:
        con.close()
    dash = build_dashboard(db, folder / "isu-dashboard.html", lang=lang)
    a = pub.audit
    # DIR is a path the user gave: shown, as all output is, with anything shaped like a person id masked
    shown_dash = mask_ids(str(dash.path))
    summary = {
        "dir": mask_ids(str(folder)), "db": mask_ids(str(db)), "key_fingerprint": key.fingerprint,
        "imports": [r.as_dict() for r in imported], "publication_id": pub.publication_id,
        "audit": a, "dashboard": shown_dash,
    }
    emit(summary, json_, (
        f"Published {a['cells']:,} cells ({a['primary']:,} primary, {a['secondary']:,} secondary suppressions; audit passed) "
        f"to {mask_ids(str(folder / 'published'))}\nOpen the dashboard: {shown_dash}"))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

"""The pool package file: one uncompressed zip holding a manifest and two Parquet files.

Layout (members stored, not deflated: Parquet is already compressed, and a plain container is
easy to audit): ``manifest.json`` first, then ``records.parquet`` and ``measurements.parquet``.
The manifest says what the package claims (versions, key fingerprint, municipalities, periods,
row counts, SHA-256 per member); the region holds the package to every claim. A package is
written to a temporary name and renamed, so a crash never leaves a half package under its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError, PackageError

__all__ = [
    "FORMAT",
    "MANIFEST",
    "PACKAGE_VERSION",
    "TABLES",
    "FileEntry",
    "Manifest",
    "MunicipalityEntry",
    "Package",
    "Period",
    "file_sha256",
    "member_name",
    "open_package",
    "refused",
    "write_package",
]

FORMAT = "isu-pool-package"
PACKAGE_VERSION = 1
MANIFEST = "manifest.json"
TABLES = ("records", "measurements")
MAX_MANIFEST_BYTES = 1 << 20

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]


def member_name(table: str) -> str:
    return f"{table}.parquet"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class FileEntry(_Strict):
    name: str
    table: Literal["records", "measurements"]
    rows: Count
    bytes: Count
    sha256: Sha256


class Period(_Strict):
    """First and last date in the data (start, end and measurement dates)."""

    first: date | None
    last: date | None


class MunicipalityEntry(_Strict):
    code: Annotated[str, Field(pattern=r"^[0-9]{4}$")]
    records: Count
    measurements: Count
    period: Period


class Manifest(_Strict):
    format: Literal["isu-pool-package"]
    package_version: Literal[1]
    schema_version: str
    store_version: str
    toolkit_version: str
    created_at: AwareDatetime
    key_fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    municipalities: Annotated[list[MunicipalityEntry], Field(min_length=1)]
    period: Period
    files: list[FileEntry]

    def file(self, table: str) -> FileEntry:
        return next(f for f in self.files if f.table == table)

    @property
    def codes(self) -> list[str]:
        return [m.code for m in self.municipalities]


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_package(out: str | Path, manifest: Manifest, members: dict[str, Path]) -> str:
    """Write the zip atomically (temp file in the same folder, fsync, rename); return its SHA-256."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST, manifest.model_dump_json(indent=2))
            for entry in manifest.files:
                zf.write(members[entry.table], entry.name)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as e:
        raise InputError(f"cannot write package {out}: {e.strerror or e}; check the folder and free space") from None
    finally:
        tmp.unlink(missing_ok=True)
    return file_sha256(out)


def refused(path: Path, reason: str) -> PackageError:
    """The one-line refusal: which package, why, and (in ``reason``) what to do."""
    return PackageError(f"package {path} refused: {reason}")


@dataclass
class Package:
    """An opened package whose container and manifest were checked; members are read on demand."""

    path: Path
    sha256: str
    manifest: Manifest

    def refuse(self, reason: str) -> PackageError:
        return refused(self.path, reason)

    def member(self, table: str) -> bytes:
        """The member's bytes, checked against the manifest's size and SHA-256."""
        entry = self.manifest.file(table)
        try:
            with zipfile.ZipFile(self.path) as zf:
                data = zf.read(entry.name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise self.refuse(f"{entry.name} is damaged ({e}); ask for a new package") from None
        if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise self.refuse(f"{entry.name} does not match its SHA-256 in the manifest (altered or damaged)")
        return data


def open_package(path: str | Path) -> Package:
    """Hash the file, check the container and parse the manifest; raise PackageError if unfit."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the package files in it, e.g. {path / '*.isupool.zip'}")
    if not path.is_file():
        raise InputError(f"no package at {path}; check the path")
    try:
        digest = file_sha256(path)
    except OSError as e:
        raise InputError(f"cannot read package {path}: {e.strerror or e}; ask its owner (or IT support) for read access") from None
    def refuse(reason: str) -> PackageError:
        return refused(path, reason)

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            expected = {MANIFEST, *map(member_name, TABLES)}
            if len(names) != len(set(names)) or set(names) != expected:
                raise refuse(f"it must hold exactly {', '.join(sorted(expected))} (found {', '.join(names) or 'nothing'})")
            for i in infos:
                if i.compress_type != zipfile.ZIP_STORED or i.flag_bits & 0x1:
                    raise refuse(f"{i.filename} is compressed or encrypted; packages store members plainly")
            if zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
                raise refuse("the manifest is implausibly large")
            raw = zf.read(MANIFEST)
            sizes = {i.filename: i.file_size for i in infos}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise refuse(f"not a readable package, perhaps truncated ({e}); ask for it again") from None
    try:
        manifest = Manifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as e:
        first = e.errors()[0] if isinstance(e, ValidationError) else None
        where = f" ({'.'.join(map(str, first['loc']))}: {first['msg']})" if first else ""
        raise refuse(f"the manifest is not a valid isu manifest{where}") from None
    if sorted(f.table for f in manifest.files) != sorted(TABLES) or any(
        f.name != member_name(f.table) for f in manifest.files
    ):
        raise refuse("the manifest's file list does not match the package")
    for f in manifest.files:
        if sizes[f.name] != f.bytes:
            raise refuse(f"{f.name} has {sizes[f.name]} bytes, the manifest says {f.bytes}")
    return Package(path, digest, manifest)

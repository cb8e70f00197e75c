"""The pool key: 32 secret bytes shared by the municipalities of a pool, kept in a file with mode 0600.

Whoever holds the key can re-identify clients by enumerating person ids, so the key never travels
with a package: packages carry only its fingerprint, which lets a region refuse packages that
were pseudonymised under another key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import KeyFileError, UsageError

__all__ = ["PoolKey", "new_key", "load_key", "default_key_path", "KEY_HEADER"]

KEY_HEADER = "isu-pool-key-v1"


@dataclass(frozen=True, repr=False)
class PoolKey:
    secret: bytes

    @property
    def fingerprint(self) -> str:
        """Public, non-reversible identifier of the key (16 hex digits)."""
        return hashlib.sha256(b"isu-key-fingerprint\0" + self.secret).hexdigest()[:16]

    def __repr__(self) -> str:  # never print the secret
        return f"PoolKey(fingerprint={self.fingerprint})"


def default_key_path() -> Path:
    return Path(os.environ.get("ISU_KEY_FILE") or "isu.key")


def new_key(path: str | Path, *, overwrite: bool = False) -> PoolKey:
    """Write a new random key with mode 0600 (created so, never world-readable even briefly)."""
    path = Path(path)
    if os.path.exists(path) and not overwrite:  # False in a folder without permission: os.open then says so
        raise KeyFileError(f"{path} already exists; a new key would change every pseudonym. Use another --out")
    key = PoolKey(secrets.token_bytes(32))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:  # where the key is to go cannot be written: a usage error (exit 2), as for any output
        if not path.parent.is_dir():
            why = f"{path.parent} is a file, not a folder" if path.parent.exists() else f"the folder {path.parent} does not exist"
            raise UsageError(f"cannot write key file {path}: {why}; create the folder first or choose another --out") from None
        raise UsageError(f"cannot write key file {path}: {e.strerror}; choose another --out (a folder you can write in)") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"{KEY_HEADER} {key.secret.hex()}\n")
    os.chmod(path, 0o600)
    return key


def load_key(path: str | Path) -> PoolKey:
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"no pool key at {path}; create one with 'isu key new --out {path}' or pass --key-file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path} is a folder; --key-file names the pool key file itself") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not an isu pool key") from None
    except PermissionError:  # the file, or a folder on the way to it
        raise KeyFileError(f"cannot read the pool key {path}: permission denied; ask whoever manages the key for read "
                           "access, or name another with ISU_KEY_FILE (or --key-file)") from None
    except OSError as e:
        raise KeyFileError(f"cannot read pool key {path}: {e.strerror or e}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"pool key {path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    parts = text.split()
    if len(parts) != 2 or parts[0] != KEY_HEADER or len(parts[1]) != 64:
        raise KeyFileError(f"{path} is not an isu pool key")
    try:
        return PoolKey(bytes.fromhex(parts[1]))
    except ValueError:
        raise KeyFileError(f"{path} is not an isu pool key") from None

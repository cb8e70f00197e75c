"""Deterministic synthetic exports for the demo, the tests and the benchmarks. No real person's data.

- ``generate(out_dir, seed=2026)`` writes the demo exports (Södertörn's ten municipalities in
  three export shapes, five rural Jämtland municipalities) and ``manifest.json``; the same seed
  gives the same bytes. The committed copies live in ``FILES_DIR``.
- ``load_manifest()`` (also ``MANIFEST``) says per file: profile, shape, encoding, delimiter,
  municipalities, rows, and the planted bad rows by fault kind, so tests can assert exact counts.
- ``write_benchmark_csv(path, rows)`` streams millions of ``generic_sv`` rows, a few of them bad.

``python -m isu.sample_data OUT_DIR`` writes the demo files; ``--benchmark ROWS`` a large file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .bench import BenchmarkFile, write_benchmark_csv
from .faults import KINDS as FAULT_KINDS
from .generate import DEFAULT_SEED, MANIFEST_NAME, file_specs, generate

__all__ = [
    "generate",
    "write_benchmark_csv",
    "BenchmarkFile",
    "load_manifest",
    "demo_files",
    "file_specs",
    "FILES_DIR",
    "MANIFEST",
    "MANIFEST_NAME",
    "FAULT_KINDS",
    "DEFAULT_SEED",
]

#: The committed demo files (made by ``generate(FILES_DIR)``; a test keeps them up to date).
FILES_DIR = Path(__file__).with_name("files")


def load_manifest(directory: str | Path = FILES_DIR) -> dict:
    """The manifest written by ``generate`` into ``directory`` (the committed one by default)."""
    return json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))


def demo_files(directory: str | Path = FILES_DIR) -> list[Path]:
    """The data files the manifest lists, in manifest order (Södertörn first, then rural)."""
    return [Path(directory) / f["file"] for f in load_manifest(directory)["files"]]


def __getattr__(name: str):
    if name == "MANIFEST":  # read on first use, not at import
        return load_manifest()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""isu: individual-based systematic follow-up (ISU) for Swedish municipal social services.

The core library: read exports, validate against the record contract, pseudonymise, store in an
embedded DuckDB workspace, aggregate with small-number suppression, pool regionally.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("isu")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]

"""isu: individual-based systematic follow-up (ISU) for Swedish municipal social services.

The core library: read exports, validate against the record contract, pseudonymise, store in an
embedded DuckDB workspace, aggregate with small-number suppression, pool regionally.
"""

#: The one place the version is written: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``),
#: so that no command spends ~17 ms of its start-up asking importlib.metadata.
__version__ = "0.1.0"

__all__ = ["__version__"]

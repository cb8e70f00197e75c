"""Regional pooling: small municipalities send pseudonymised packages; the region merges them.

Same key, same pseudonym: a client who moved between municipalities of a pool has one pseudonym
in all of their packages, so the region counts distinct clients right. The region receives
pseudonyms and the key's fingerprint only, never the key. The work is split by direction:
``pool_package`` (the file format), ``pool_contract`` (checks), ``pool_export``, ``pool_import``.
"""

from .pool_export import build_manifest, export_package
from .pool_import import ALREADY, IMPORTED, SUPERSEDED, import_packages
from .pool_package import Manifest, Package, open_package, write_package

__all__ = [
    "ALREADY",
    "IMPORTED",
    "SUPERSEDED",
    "Manifest",
    "Package",
    "build_manifest",
    "export_package",
    "import_packages",
    "open_package",
    "write_package",
]

"""The public API is pinned: a change to ``__all__`` is a deliberate act (after httpx)."""

from __future__ import annotations

import importlib

import pytest

PINNED = {
    "isu.schemas": [
        "SCHEMA_VERSION", "CodeList", "FollowUpRecord", "Intervention", "Measurement", "Need", "Outcome",
        "Profile", "code_list", "code_list_names", "load_profile", "profile_names",
    ],
    "isu.errors": [
        "IsuError", "UsageError", "InputError", "ProfileMismatch", "WorkspaceBusy", "WorkspaceError", "WorkspaceReadOnly", "KeyFileError",
        "PackageError", "DisclosureError", "MissingExtra", "EXIT_CODES",
    ],
    "isu.keys": ["PoolKey", "new_key", "load_key", "default_key_path", "KEY_HEADER"],
    "isu.importer": ["ImportResult", "import_file", "choose_profile", "choose_source"],
}


@pytest.mark.parametrize("module", sorted(PINNED))
def test_all_is_pinned(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PINNED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which does not exist"


def test_layers_point_one_way():
    """schemas ← core ← cli/dashboards: the contract imports nothing of the core."""
    import ast
    from pathlib import Path

    root = Path(__file__).parents[1]
    for path in (root / "schemas").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not (node.module == "isu" or node.module.startswith("isu.")) or node.module.startswith("isu.schemas"), (
                    f"{path.name} imports {node.module}: schemas must not depend on the core")
    for path in (root / "isu").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "isu.cli" not in text and "isu.dashboards" not in text, f"core module {path.name} imports cli/dashboards"

"""Generate the JSON Schema of the record contract into ``schemas/json/``.

Run ``python -m isu.schemas.jsonschema`` after changing the models; a test fails while the files
in the repository differ from what the models generate.
"""

from __future__ import annotations

import json
from pathlib import Path

from .models import SCHEMA_VERSION, FollowUpRecord

__all__ = ["JSON_DIR", "generate", "write"]

JSON_DIR = Path(__file__).with_name("json")


def generate() -> dict[str, str]:
    """File name → JSON text, as the models define it now."""
    schema = FollowUpRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://isu.example/schemas/follow-up-record/v{SCHEMA_VERSION}.json"
    return {"follow_up_record.schema.json": json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"}


def write() -> list[Path]:
    JSON_DIR.mkdir(exist_ok=True)
    paths = []
    for name, text in generate().items():
        path = JSON_DIR / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)

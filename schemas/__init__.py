"""The record contract: pydantic models, code lists, import profiles and the generated JSON Schema."""

from .codes import CodeList, code_list, code_list_names
from .models import (
    SCHEMA_VERSION,
    FollowUpRecord,
    Intervention,
    Measurement,
    Need,
    Outcome,
)
from .profiles import Profile, load_profile, profile_names

__all__ = [
    "SCHEMA_VERSION",
    "CodeList",
    "FollowUpRecord",
    "Intervention",
    "Measurement",
    "Need",
    "Outcome",
    "Profile",
    "code_list",
    "code_list_names",
    "load_profile",
    "profile_names",
]

"""Checks a JSON body against a Huawei SDK model's declared wire types, field by field.

The SDKs silently coerce mismatched primitives (``str(123)``) and drop unknown keys, so their own
deserialisation proves little; this compares what we send with each model's ``openapi_types``.
"""

from __future__ import annotations

import re
from types import ModuleType

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def type_problems(value, sdk_type: str, where: str, models: ModuleType) -> list[str]:
    """Compare one JSON value with an SDK ``openapi_types`` entry; return human-readable mismatches."""
    if value is None:
        return []
    list_of = re.fullmatch(r"list\[(.*)\]", sdk_type)
    if list_of:
        if not isinstance(value, list):
            return [f"{where}: SDK type {sdk_type}, we return {type(value).__name__} {value!r}"]
        return [p for i, v in enumerate(value) for p in type_problems(v, list_of.group(1), f"{where}[{i}]", models)]
    primitives = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if sdk_type in primitives:
        ok = isinstance(value, primitives[sdk_type]) and not (sdk_type == "int" and isinstance(value, bool))
        return [] if ok else [f"{where}: SDK type {sdk_type}, we return {type(value).__name__} {value!r}"]
    if sdk_type == "datetime":
        ok = isinstance(value, str) and ISO_Z.match(value)
        return [] if ok else [f"{where}: SDK type datetime, we return {type(value).__name__} {value!r}"]
    klass = getattr(models, sdk_type)
    if not isinstance(value, dict):
        return [f"{where}: SDK model {sdk_type}, we return {type(value).__name__}"]
    return model_problems(value, klass, models, where)


def model_problems(data: dict, klass: type, models: ModuleType, where: str | None = None) -> list[str]:
    where = where or klass.__name__
    problems = []
    json_to_attr = {v: k for k, v in klass.attribute_map.items()}
    for key in data:
        if key not in json_to_attr:
            problems.append(f"{where}.{key}: not a field of SDK model {klass.__name__} (dropped by the SDK)")
    for attr, sdk_type in klass.openapi_types.items():
        key = klass.attribute_map[attr]
        if key not in data:
            problems.append(f"{where}.{key}: field of SDK model {klass.__name__} ({sdk_type}) missing from our JSON")
        else:
            problems.extend(type_problems(data[key], sdk_type, f"{where}.{key}", models))
    return problems

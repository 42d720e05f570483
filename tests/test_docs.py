"""The configuration is the product's language: every key it accepts is documented."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from emancipate.config import GatewayConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models reachable from a field's type (lists, dicts, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None:
        return []
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models(arg))
    return found


def _keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for sub in _models(field.annotation):
            keys |= _keys(sub, seen)
    return keys


def test_every_config_key_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"`([a-z_][a-z0-9_\-]*)", text))
    documented |= set(re.findall(r"\.([a-z_][a-z0-9_]*)`", text))
    documented |= set(re.findall(r"([a-z_][a-z0-9_]*):\s", text))  # YAML examples
    missing = sorted(_keys(GatewayConfig, set()) - documented)
    assert not missing, f"keys missing from docs/configuration.md: {missing}"


def test_union_types_are_walked() -> None:
    """Guard against the walker silently seeing nothing (a test that cannot fail)."""
    keys = _keys(GatewayConfig, set())
    assert {"server", "providers", "routes", "database_url", "base_url", "action"} <= keys

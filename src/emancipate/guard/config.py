"""Leak-guard configuration (owned by the guard stage).

Everything here is validated at start-up, so a typo in a detector name, a phone region or
a term file fails with the key that is wrong instead of silently detecting less.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from emancipate.guard.domains import BUILTIN_DOMAINS
from emancipate.guard.engine import (
    REPLACED_BY_LOCAL,
    SecretRule,
    builtin_rules,
    load_rules,
    superseded,
)
from emancipate.guard.entities_config import EntitiesConfig
from emancipate.guard.names import CLASSES, DETECTORS, GuardClass


class DomainConfig(BaseModel):
    """A topic domain, defined by keywords (phrases allowed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: list[str] | None = Field(
        None, description="keywords or phrases; omit for a built-in domain to use its list"
    )
    extra_keywords: list[str] = Field(
        default_factory=list, description="added to the built-in list"
    )
    min_hits: int = Field(2, ge=1, description="distinct keywords needed to detect the domain")

    @field_validator("keywords", "extra_keywords")
    @classmethod
    def _non_blank(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(not k.strip() for k in v):
            raise ValueError("keywords must not be blank")
        return v


def _builtin_domains() -> dict[str, DomainConfig]:
    return {name: DomainConfig() for name in BUILTIN_DOMAINS}


class GuardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    classes: list[GuardClass] = Field(
        default_factory=lambda: list(CLASSES), description="classes to detect"
    )
    disabled_detectors: list[str] = Field(
        default_factory=list, description="detector names to switch off, e.g. ipv4"
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["FR", "US", "GB"],
        description="regions whose national phone formats are recognised (+… always is)",
    )
    terms: list[str] = Field(
        default_factory=list, description="confidential terms: code names, customers, hosts"
    )
    terms_files: list[str] = Field(
        default_factory=list, description="files with one confidential term per line (# comments)"
    )
    allowlist: list[str] = Field(
        default_factory=list,
        description="exact values never reported (e.g. a public support address)",
    )
    domains: dict[str, DomainConfig] = Field(
        default_factory=_builtin_domains,
        description="topic domains; default: the built-in search, advertising, cloud",
    )
    code_min_lines: int = Field(3, ge=1, description="code-like lines that make a code block")
    rules_files: list[str] = Field(
        default_factory=list,
        description="TOML files of extra secret rules (gitleaks' format, see "
        "docs/guard-and-policy.md), loaded after the built-in ones",
    )
    disabled_rules: list[str] = Field(
        default_factory=list, description="secret rule ids to switch off, e.g. aws-access-key-id"
    )
    unknown_fields: Literal["scan", "drop"] = Field(
        "scan", description="request fields the gateway does not know: scanned like the "
        "others, or dropped from the body before it is sent (never forwarded unscanned)")
    max_scan_bytes: int = Field(
        1 << 20, ge=1024, description="characters of text one request may make the guard "
        "read (every string that will be sent, decoded payloads included)")
    over_budget: Literal["refuse", "in_house"] = Field(
        "refuse", description="a request over max_scan_bytes: refused (413 "
        "scan_budget_exceeded), or sent unscanned to in-house targets only")
    offload: Literal["thread", "process"] = Field(
        "thread", description="where scans of more than 8 KB of text run: a worker thread "
        "(one process) or a pool of worker processes (the event loop keeps its GIL)")
    entities: EntitiesConfig = Field(
        default_factory=EntitiesConfig,
        description="person names and postal addresses (opt-in, off by default)")

    @field_validator("disabled_detectors")
    @classmethod
    def _known_detectors(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in DETECTORS:
                known = ", ".join(sorted(DETECTORS))
                raise ValueError(f"unknown detector {name!r} (known: {known})")
        return v

    @field_validator("rules_files")
    @classmethod
    def _rule_files_load(cls, v: list[str]) -> list[str]:
        for path in v:
            rules = load_rules(Path(path))  # RuleError (a ValueError) names file and rule
            for rule in rules:
                if rule.detector not in DETECTORS:
                    raise ValueError(f"{path}, rule {rule.id}: unknown detector "
                                     f"{rule.detector!r} (known: {', '.join(sorted(DETECTORS))})")
        return v

    @field_validator("disabled_rules")
    @classmethod
    def _known_rules(cls, v: list[str]) -> list[str]:
        known = {r.id for r in builtin_rules()} | REPLACED_BY_LOCAL  # those: already off
        for rule_id in v:
            if rule_id not in known:
                raise ValueError(f"unknown rule id {rule_id!r} (the ids of the built-in rule "
                                 "files, e.g. aws-access-key-id, private-key)")
        return v

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, v: list[str]) -> list[str]:
        out = []
        for region in v:
            r = region.upper()
            if r not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {region!r} (ISO 3166 codes, e.g. FR)")
            out.append(r)
        return out

    @field_validator("terms")
    @classmethod
    def _non_blank_terms(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("terms must not be blank")
        return v

    @field_validator("terms_files")
    @classmethod
    def _readable(cls, v: list[str]) -> list[str]:
        for path in v:
            p = Path(path)
            if not p.is_file():
                raise ValueError(f"{path}: no such file (paths are relative to the working "
                                 "directory)")
        return v

    @field_validator("domains")
    @classmethod
    def _domains_have_keywords(cls, v: dict[str, DomainConfig]) -> dict[str, DomainConfig]:
        for name, d in v.items():
            if not name or ":" in name or name != name.strip():
                raise ValueError(f"{name!r}: a domain name must be a plain word")
            if d.keywords is None and name not in BUILTIN_DOMAINS:
                builtin = ", ".join(sorted(BUILTIN_DOMAINS))
                raise ValueError(
                    f"{name}: `keywords` is required (built-in domains: {builtin})"
                )
        return v

    def domain_keywords(self) -> dict[str, tuple[list[str], int]]:
        """Each domain's effective keyword list and threshold."""
        out: dict[str, tuple[list[str], int]] = {}
        for name, d in self.domains.items():
            base = list(BUILTIN_DOMAINS.get(name, ())) if d.keywords is None else list(d.keywords)
            out[name] = (base + list(d.extra_keywords), d.min_hits)
        return out

    def load_rules(self) -> list[SecretRule]:
        """The built-in secret rules and the operator's, less the disabled ones."""
        rules = builtin_rules()
        for path in self.rules_files:
            rules.extend(load_rules(Path(path)))
        off = set(self.disabled_rules)
        return [r for r in superseded(rules) if r.id not in off]

    def load_terms(self) -> list[str]:
        """Inline terms plus the terms files (read at start-up, never per request)."""
        terms = list(self.terms)
        for path in self.terms_files:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    terms.append(line)
        return terms

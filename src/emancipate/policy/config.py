"""Co-opetition policy configuration (owned by the policy stage).

```yaml
policy:
  vendors:                      # keyed by a provider's `vendor`
    bigsearch:
      relationships: {search: competitor, advertising: competitor}
  rules:                        # first match wins; the built-in defaults come after
    - name: research-may-see-personal
      class: personal
      team: research
      action: allow
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emancipate.guard.names import CLASSES

Action = Literal["allow", "redact", "in-house-only", "block"]
Relationship = Literal["partner", "competitor"]
Ownership = Literal["in-house", "external"]


def _as_list(v: object) -> object:
    return [v] if isinstance(v, str) else v


class Rule(BaseModel):
    """Which findings (and, optionally, for which targets and callers) get which action.

    A rule matches one finding for one target; every condition given must hold. Lists mean
    "any of these"."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = Field(None, description="named in audit records and 403 errors")
    cls: list[str] = Field(..., alias="class", description="secret, personal, confidential, "
                           "code, domain, or * for any")
    detector: list[str] | None = Field(None, description="detector names; * wildcards")
    domain: list[str] | None = Field(None, description="topic domains of the request")
    relationship: Relationship | None = Field(
        None, description="the target vendor's relationship in the domain concerned")
    ownership: Ownership | None = None
    vendor: list[str] | None = None
    team: list[str] | None = Field(None, description="the caller's team (virtual key)")
    key: list[str] | None = Field(None, description="the caller's virtual key id or name")
    action: Action

    @field_validator("cls", "detector", "domain", "vendor", "team", "key", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return _as_list(v)

    @field_validator("cls")
    @classmethod
    def _known_class(cls, v: list[str]) -> list[str]:
        for c in v:
            if c != "*" and c not in CLASSES:
                raise ValueError(f"unknown class {c!r} (one of: {', '.join(CLASSES)}, *)")
        return v


class VendorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    relationships: dict[str, Relationship] = Field(
        default_factory=dict, description="domain -> partner | competitor"
    )


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    defaults: bool = Field(
        True, description="append the cautious built-in rules after `rules`"
    )
    rules: list[Rule] = Field(default_factory=list, description="evaluated in order")
    vendors: dict[str, VendorPolicy] = Field(
        default_factory=dict, description="relationships per vendor (a provider's `vendor`)"
    )
    default_relationship: Relationship = Field(
        "partner", description="for a domain a vendor has no relationship declared in"
    )

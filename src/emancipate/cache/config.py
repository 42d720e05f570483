"""Response cache configuration (owned by the cache stage).

```yaml
routes:
  support-bot:
    cache: {ttl: 1h}            # exact cache, scoped to the caller's key
    targets: [...]
  faq:
    cache:
      ttl: 1d
      semantic: {threshold: 0.92, embedding_route: local-embed}  # paraphrases hit too
    targets: [...]
cache:                          # gateway-wide limits (optional)
  max_entries: 100000
  max_entry_bytes: 262144
```
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: object) -> object:
    """`90`, `"90s"`, `"5m"`, `"1h"`, `"7d"` → seconds; anything else is left to pydantic."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if m is None:
            raise ValueError(f"{value!r} is not a duration (say 90, 90s, 5m, 1h or 7d)")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return value


class SemanticCache(BaseModel):
    """`routes.<name>.cache.semantic`: a paraphrase of a cached question is served too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_route: str = Field(
        ..., min_length=1, description="the route whose targets embed the last user message; "
        "every one of them must be in-house, so no vendor sees a prompt to build the cache")
    threshold: float = Field(
        0.92, gt=0, le=1, description="cosine similarity from which a stored question "
        "answers a new one (docs/cache.md#semantic-cache measures false hits per threshold)")
    same_names: bool = Field(
        True, description="a stored question answers a new one only if both hold the same "
        "numbers and names (capitalised words not starting a sentence): \"... of France?\" "
        "never answers \"... of Spain?\", whatever their similarity")
    max_candidates: int = Field(
        2000, ge=1, le=100_000, description="entries compared per lookup: the newest of the "
        "request's partition (same route, scope, policy outcome and everything but the last "
        "user message)")


class RouteCache(BaseModel):
    """`routes.<name>.cache`: answers of this route are kept and served again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl: float = Field(..., gt=0, le=365 * 86400,
                       description="how long an answer is served again: seconds or 30s/5m/1h/7d")
    scope: Literal["key", "team", "global"] = Field(
        "key", description="who shares entries: the same virtual key (default), the same "
        "team, or every caller of the route")
    sampled: bool = Field(
        False, description="also cache requests sampled with temperature > 0 (or with no "
        "temperature, whose default is 1): each such request then gets the same answer")

    semantic: SemanticCache | None = Field(
        None, description="also serve the answer of a stored paraphrase (opt-in; see "
        "docs/cache.md#semantic-cache)")

    _ttl = field_validator("ttl", mode="before")(classmethod(lambda cls, v: seconds(v)))


class CacheConfig(BaseModel):
    """`cache`: limits shared by every route's cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_entries: int = Field(100_000, ge=1, description="entries kept in the database; past "
                             "it the ones that expire first are evicted")
    max_entry_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024,
                                 description="larger answers are not cached")
    backend: Literal["auto", "database", "redis"] = Field(
        "auto", description="`auto`: Redis when server.redis_url is set (replicas share it), "
        "else the ledger database")

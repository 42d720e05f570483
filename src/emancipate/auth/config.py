"""Virtual keys and access configuration (owned by the auth stage)."""

from pydantic import BaseModel, ConfigDict, Field


class AuthConfig(BaseModel):
    """Virtual keys, scopes, budgets and rate limits; keys live in `server.database_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="off only for the loopback-only embedded default")
    admin_key_env: str = Field("EMANCIPATE_ADMIN_KEY", description="env var with the admin key")
    key_cache_ttl: float = Field(
        5.0, ge=0, le=3600,
        description="seconds a looked-up key is trusted in memory: a revocation made by another "
        "replica (or the CLI) takes effect within this delay",
    )
    key_cache_size: int = Field(100_000, ge=1, description="keys (and unknown keys) cached")
    reserve_completion_tokens: int = Field(
        1024, ge=0, le=1_000_000,
        description="completion tokens assumed, for a request without max_tokens, when its "
        "estimated cost is held against a key's budget at admission (the real cost replaces "
        "it when the request ends)",
    )
    redis_prefix: str = Field(
        "emancipate", min_length=1, description="namespace of the counters in server.redis_url"
    )

"""Virtual keys and access configuration (owned by the auth stage)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# An admin identity's role, each including the ones before it (`auth/admins.py`).
Role = Literal["viewer", "operator", "admin"]


class OIDCConfig(BaseModel):
    """Dashboard log-in through an OpenID Connect provider (authorization code with PKCE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(..., min_length=1, description="the provider's issuer URL; its "
                        "discovery document is read from <issuer>/.well-known/"
                        "openid-configuration")
    client_id: str = Field(..., min_length=1, description="this gateway's client id at the "
                           "provider")
    client_secret_env: str | None = Field(
        None, description="env var with the client secret, for a confidential client; unset: "
        "a public client, PKCE alone")
    redirect_url: str = Field(..., min_length=1, description="the callback registered at the "
                              "provider: https://<gateway>/admin/oidc/callback")
    scopes: list[str] = Field(["openid", "email", "profile"], description="scopes asked for")
    role_claim: str = Field("groups", min_length=1, description="ID token claim (a string or a "
                            "list) whose values `roles` maps to a role")
    roles: dict[str, Role] = Field(
        {}, description="claim value -> role (viewer, operator, admin); the highest matching "
        "role wins")
    default_role: Role | None = Field(
        None, description="role of a user whose claim matches none of `roles`; unset: refused")
    session_ttl: float = Field(8 * 3600, gt=0, le=30 * 86400,
                               description="seconds a dashboard session lasts")
    session_secret_env: str = Field(
        "EMANCIPATE_SESSION_SECRET", min_length=1, description="env var with the key that "
        "signs dashboard sessions (the same on every replica; at least 32 characters)")


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
    oidc: OIDCConfig | None = Field(
        None, description="dashboard log-in through an OpenID Connect provider; unset: admin "
        "keys only")

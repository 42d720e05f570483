"""Virtual keys and access configuration (owned by the auth stage)."""

from pydantic import BaseModel, ConfigDict, Field


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="off only for the loopback-only embedded default")
    admin_key_env: str = Field("EMANCIPATE_ADMIN_KEY", description="env var with the admin key")

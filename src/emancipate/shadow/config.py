"""Shadow-evaluation configuration (owned by the shadow stage)."""

from pydantic import BaseModel, ConfigDict


class ShadowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

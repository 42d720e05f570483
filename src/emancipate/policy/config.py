"""Co-opetition policy configuration (owned by the policy stage)."""

from pydantic import BaseModel, ConfigDict


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

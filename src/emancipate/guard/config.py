"""Leak-guard configuration (owned by the guard stage)."""

from pydantic import BaseModel, ConfigDict


class GuardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True

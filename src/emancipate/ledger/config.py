"""Ledger configuration (owned by the ledger stage)."""

from pydantic import BaseModel, ConfigDict, Field


class LedgerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    log_content: bool = Field(False, description="store message contents (off by default)")

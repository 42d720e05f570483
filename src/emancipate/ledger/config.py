"""Ledger configuration (owned by the ledger stage)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

# Monthly budgets (keys and teams) sum the current month's requests from the ledger: up to 30
# days back, so retention must keep at least that (31: a month, whatever its length).
MIN_RETENTION_DAYS = 31


class LedgerConfig(BaseModel):
    """How the request ledger is written; the database itself is `server.database_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="record requests (keys and budgets work either way)")
    log_content: bool = Field(False, description="store message contents (off by default)")
    currency: str = Field("USD", min_length=1, max_length=8, description="unit of every price")
    batch_size: int = Field(500, ge=1, le=100_000, description="records written per transaction")
    flush_interval: float = Field(
        0.2, gt=0, le=60,
        description="seconds between writes; with `journal: off`, a hard kill loses at most "
        "this much traffic",
    )
    journal: Literal["off", "write", "fsync"] = Field(
        "write",
        description="each record is appended to a local journal in `spill_dir` before the "
        "answer's last byte, and replayed at the next start: `write` survives the process being "
        "killed (SIGKILL, OOM), `fsync` also a power cut (one disk flush per request), `off` "
        "loses the last `flush_interval` of traffic on a hard kill",
    )
    shutdown_timeout: float = Field(
        30.0, ge=0, description="on shutdown, retry an unreachable database this long, then spill"
    )
    spill_dir: str = Field(
        "ledger-spill",
        description="records the database refused at shutdown, shadow verdicts it could not "
        "take, and the crash journal go here (JSON lines) and are replayed at the next start",
    )
    retention_days: int | None = Field(
        None,
        description="delete requests (with their attempts, decisions, findings, contents) and "
        "shadow verdicts of UTC days more than this many days before today; a background job "
        "in each gateway runs it hourly, `emancipate ledger prune` on demand. The daily "
        "summary keeps the report's figures of deleted days. Unset: keep forever",
    )

    @field_validator("retention_days")
    @classmethod
    def _long_enough(cls, days: int | None) -> int | None:
        if days is not None and days < MIN_RETENTION_DAYS:
            raise PydanticCustomError(  # its message alone, without pydantic's "Value error, "
                "retention_too_short",
                f"must be at least {MIN_RETENTION_DAYS} (or unset: keep forever): monthly "
                "budgets add up the current month's requests")
        return days

"""The ledger stage: every request's record, prices, and usage aggregation.

Public names are imported lazily so that loading the config (which imports
``ledger.config``) does not pull in SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emancipate.ledger.config import LedgerConfig
    from emancipate.ledger.prices import cost
    from emancipate.ledger.store import Ledger, parse_since

__all__ = ["Ledger", "LedgerConfig", "cost", "parse_since"]


def __getattr__(name: str) -> Any:
    if name == "Ledger" or name == "parse_since":
        from emancipate.ledger import store

        return getattr(store, name)
    if name == "cost":
        from emancipate.ledger.prices import cost

        return cost
    if name == "LedgerConfig":
        from emancipate.ledger.config import LedgerConfig

        return LedgerConfig
    raise AttributeError(name)

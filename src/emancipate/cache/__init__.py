"""The response cache (`cache.stage`): answers served again without a vendor call.

`ResponseCache` is imported lazily so that loading the config, which imports
`cache.config`, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emancipate.cache.config import CacheConfig, RouteCache
    from emancipate.cache.stage import Assembler, Lookup, ResponseCache

__all__ = ["Assembler", "CacheConfig", "Lookup", "ResponseCache", "RouteCache"]


def __getattr__(name: str) -> Any:
    if name in ("CacheConfig", "RouteCache"):
        from emancipate.cache import config

        return getattr(config, name)
    from emancipate.cache import stage

    return getattr(stage, name)

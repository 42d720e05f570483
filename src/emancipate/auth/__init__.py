"""The auth stage: virtual keys, scopes, budgets and rate limits.

Public names are imported lazily: ``emancipate.config`` imports ``auth.config``, and the
stage itself imports the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emancipate.auth.access import ADMIN, Access
    from emancipate.auth.admin import admin_routes
    from emancipate.auth.keys import KeyInfo, KeyStore

__all__ = ["ADMIN", "Access", "KeyInfo", "KeyStore", "admin_routes"]


def __getattr__(name: str) -> Any:
    if name in ("Access", "ADMIN"):
        from emancipate.auth import access

        return getattr(access, name)
    if name in ("KeyStore", "KeyInfo"):
        from emancipate.auth import keys

        return getattr(keys, name)
    if name == "admin_routes":
        from emancipate.auth.admin import admin_routes

        return admin_routes
    raise AttributeError(name)

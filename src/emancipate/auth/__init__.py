"""The auth stage: virtual keys, scopes, budgets and rate limits.

Public names are imported lazily: ``emancipate.config`` imports ``auth.config``, and the
stage itself imports the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emancipate.auth.access import ADMIN, Access
    from emancipate.auth.admins import AdminInfo, AdminStore, Role
    from emancipate.auth.keys import KeyInfo, KeyStore, TeamInfo
    from emancipate.auth.teams import TeamStore

__all__ = ["ADMIN", "Access", "AdminInfo", "AdminStore", "KeyInfo", "KeyStore", "Role",
           "TeamInfo", "TeamStore"]


def __getattr__(name: str) -> Any:
    if name in ("Access", "ADMIN"):
        from emancipate.auth import access

        return getattr(access, name)
    if name in ("KeyStore", "KeyInfo", "TeamInfo"):
        from emancipate.auth import keys

        return getattr(keys, name)
    if name in ("AdminInfo", "AdminStore", "Role"):
        from emancipate.auth import admins

        return getattr(admins, name)
    if name == "TeamStore":
        from emancipate.auth import teams

        return teams.TeamStore
    raise AttributeError(name)

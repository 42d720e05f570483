"""The shadow stage: sampled requests replayed on the other side, judged, recorded.

`Shadow` (in `shadow.stage`) is imported lazily so that loading the config, which imports
`shadow.config`, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emancipate.shadow.config import ShadowConfig
    from emancipate.shadow.stage import Shadow, ShadowJob

__all__ = ["Shadow", "ShadowConfig", "ShadowJob"]


def __getattr__(name: str) -> Any:
    if name in ("Shadow", "ShadowJob"):
        from emancipate.shadow import stage

        return getattr(stage, name)
    if name == "ShadowConfig":
        from emancipate.shadow.config import ShadowConfig

        return ShadowConfig
    raise AttributeError(name)

"""Shadow-evaluation configuration (owned by the shadow stage).

Which requests are shadowed is per route (`routes.<name>.shadow_rate`); this section says
how they are judged and bounded:

```yaml
shadow:
  judge: judge            # `exact`, or the name of a route on this gateway
  max_concurrent: 4
  keep_prompts: true      # needed by `emancipate router train --from-ledger`
  direction: to-in-house  # or `both`: in-house answers are also shadowed to an external
```
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["to-in-house", "both"]


class ShadowConfig(BaseModel):
    """How sampled requests are replayed on the other side and judged (off the hot path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: str = Field(
        "exact", min_length=1,
        description="`exact`: the two answers must agree (normalised text, or the same choice "
        "letter); otherwise the name of a route on this gateway used as a pairwise judge "
        "(short or choice answers are still compared exactly, see `exact_max_chars`)",
    )
    exact_max_chars: int = Field(
        40, ge=0,
        description="with a judge route: answers both at most this long (normalised) or both "
        "a choice letter are compared exactly instead of asking the judge; 0 always asks",
    )
    judge_max_tokens: int = Field(
        16, ge=1, le=4096, description="max_tokens of the judge's reply (it answers A, B or TIE)"
    )
    direction: Direction = Field(
        "to-in-house",
        description="`to-in-house`: requests served by an external target are replayed on an "
        "in-house one; `both`: requests served in-house are also replayed on an external "
        "target (within the policy)",
    )
    directions: dict[str, Direction] = Field(
        default_factory=dict, description="per-route override of `direction`, by route name"
    )
    max_concurrent: int = Field(
        4, ge=1, le=1024,
        description="shadow evaluations in flight at once; a sampled request beyond this is "
        "dropped and counted (logged at shutdown), never queued",
    )
    timeout: float = Field(
        120.0, gt=0,
        description="seconds for one evaluation (shadow answer plus judge) before it is "
        "abandoned and recorded as an error",
    )
    shutdown_timeout: float = Field(
        10.0, ge=0,
        description="on shutdown, wait this long for evaluations in flight, then cancel them",
    )
    keep_prompts: bool = Field(
        False,
        description="store the prompt text with the verdict (for `router train --from-ledger`); "
        "only for requests in which the guard found nothing, and only when the guard is on",
    )

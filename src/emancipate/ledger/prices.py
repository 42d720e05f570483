"""What a request cost: vendor list prices, overridable per provider and per model.

The table holds public list prices in USD per million tokens **as of 2025-10-01** (standard
tier, no batch or cache discounts). Prices change: an operator who pays something else sets
``price`` (whole provider) or ``prices`` (per upstream model) in the provider's config, and
those always win over the table.

In-house targets are never priced from the table (their cost is your hardware). They carry a
per-token price, a per-hour price, or both. A per-hour cost is spread over the requests by the
time they held the hardware: a request that kept one of the provider's ``max_concurrency``
slots (1 when unset) busy for ``seconds`` costs ``per_hour * seconds / 3600 / slots``. A server
kept busy for the whole hour thus costs exactly ``per_hour``; idle time is charged to nobody
(the report can show it as ``per_hour * hours - attributed``).
"""

from __future__ import annotations

from typing import Any

PRICES_AS_OF = "2025-10-01"
CURRENCY = "USD"

# upstream model name (or prefix: dated snapshots such as gpt-4o-2024-08-06 match gpt-4o)
#   -> (input per Mtok, output per Mtok)
VENDOR_PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    # Anthropic
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
    # Mistral
    "mistral-large": (2.0, 6.0),
    "mistral-medium": (0.40, 2.0),
    "mistral-small": (0.10, 0.30),
    "codestral": (0.30, 0.90),
    "open-mistral-nemo": (0.15, 0.15),
    "ministral-8b": (0.10, 0.10),
    "ministral-3b": (0.04, 0.04),
    "mistral-embed": (0.10, 0.0),
    # Google (OpenAI-compatible endpoint), prompts up to 200k tokens
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    # DeepSeek (V3.2 pricing, cache miss)
    "deepseek-chat": (0.28, 0.42),
    "deepseek-reasoner": (0.28, 0.42),
    # Groq
    "llama-3.3-70b-versatile": (0.59, 0.79),
    "llama-3.1-8b-instant": (0.05, 0.08),
}

_BY_LENGTH = sorted(VENDOR_PRICES, key=len, reverse=True)


def table_price(upstream_model: str) -> tuple[float, float] | None:
    """The list price of a vendor model: exact name, else the longest known prefix."""
    name = upstream_model.lower()
    if "/" in name:  # e.g. openrouter-style "openai/gpt-4o"
        name = name.rsplit("/", 1)[1]
    exact = VENDOR_PRICES.get(name)
    if exact is not None:
        return exact
    for known in _BY_LENGTH:
        if name.startswith(known) and name[len(known)] in "-@:.":
            return VENDOR_PRICES[known]
    return None


def cost(
    provider_cfg: Any, upstream_model: str, prompt_tokens: int, completion_tokens: int,
    seconds: float = 0.0,
) -> float:
    """Cost of one request in the ledger's currency.

    Precedence: the provider's ``prices[upstream_model]``, then its ``price`` when set in the
    config, then (external providers only) the vendor table, else 0. ``seconds`` is how long
    the request held the target (the served attempt's latency): it spreads ``per_hour``.
    """
    price = provider_cfg.prices.get(upstream_model)
    if price is None and "price" in provider_cfg.model_fields_set:
        price = provider_cfg.price
    if price is not None:
        total = (prompt_tokens * price.input_per_mtok
                 + completion_tokens * price.output_per_mtok) / 1e6
        if price.per_hour and seconds > 0:
            slots = getattr(provider_cfg, "max_concurrency", None) or 1
            total += price.per_hour * seconds / 3600.0 / slots
        return total
    if provider_cfg.ownership != "external":
        return 0.0
    listed = table_price(upstream_model)
    if listed is None:
        return 0.0
    return (prompt_tokens * listed[0] + completion_tokens * listed[1]) / 1e6

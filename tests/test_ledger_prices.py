"""Prices: the vendor table, config overrides, in-house per-token and per-hour costs."""

from __future__ import annotations

import pytest

from emancipate.config import parse_config
from emancipate.ledger import cost
from emancipate.ledger.prices import PRICES_AS_OF, table_price


def provider(**kw: object):  # noqa: ANN201
    base = {"kind": "openai-compatible", "base_url": "http://x/v1", "ownership": "external",
            "vendor": "openai"}
    base.update(kw)
    return parse_config({"providers": {"p": base}}).providers["p"]


def test_table_prices_with_dated_snapshots():
    assert PRICES_AS_OF
    assert table_price("gpt-4o") == (2.5, 10.0)
    assert table_price("gpt-4o-2024-08-06") == (2.5, 10.0)
    assert table_price("gpt-4o-mini-2024-07-18") == (0.15, 0.6)
    assert table_price("claude-sonnet-4-5-20250929") == (3.0, 15.0)
    assert table_price("mistral-large-latest") == (2.0, 6.0)
    assert table_price("openai/gpt-4.1-mini") == (0.4, 1.6)
    assert table_price("gpt-4oo") is None
    assert table_price("my-finetune") is None


def test_external_provider_uses_the_table():
    p = provider()
    assert cost(p, "gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert cost(p, "gpt-4o-mini", 2000, 1000) == pytest.approx((2000 * 0.15 + 1000 * 0.6) / 1e6)
    assert cost(p, "unknown-model", 1000, 1000) == 0.0


def test_config_overrides_win():
    p = provider(price={"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                 prices={"gpt-4o": {"input_per_mtok": 5.0, "output_per_mtok": 0.0}})
    assert cost(p, "gpt-4o", 1_000_000, 1_000_000) == pytest.approx(5.0)
    assert cost(p, "gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(3.0)
    free = provider(price={"input_per_mtok": 0})  # explicitly free: beats the table
    assert cost(free, "gpt-4o", 1_000_000, 1_000_000) == 0.0


def test_in_house_per_token_and_per_hour():
    vllm = provider(ownership="in-house", vendor="us")
    assert cost(vllm, "gpt-4o", 1_000_000, 1_000_000) == 0.0  # never the vendor table
    tokens = provider(ownership="in-house", vendor="us", price={"input_per_mtok": 0.1,
                                                                 "output_per_mtok": 0.2})
    assert cost(tokens, "llama", 1_000_000, 1_000_000) == pytest.approx(0.3)
    hourly = provider(ownership="in-house", vendor="us", price={"per_hour": 3.6},
                      max_concurrency=4)
    # 10 s of one of 4 slots of a 3.6/h server: 3.6 * 10 / 3600 / 4
    assert cost(hourly, "llama", 500, 500, seconds=10) == pytest.approx(0.0025)
    assert cost(hourly, "llama", 500, 500) == 0.0  # without a duration, nothing to spread
    # A server kept fully busy for an hour costs exactly its hourly price.
    busy = sum(cost(hourly, "llama", 0, 0, seconds=3600) for _ in range(4))
    assert busy == pytest.approx(3.6)

"""The semantic cache through started gateways (issue 15): a paraphrase of a cached question is
served from the cache, embedded by the in-house embedded model (llama.cpp, the product's
GGUF); an unrelated question, or the same paraphrase under another scope or another policy
outcome, is not. Its configuration is refused, naming file, key and reason, when the
embedding route could show a prompt to a vendor."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from emancipate.cache.stage import anchors
from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

pytest_plugins = ["tests.services"]

ADMIN_KEY = "admin-" + "e2e-semantic-3f9a"
QUESTION = "What is the capital of France?"
PARAPHRASE = "Which city is the capital of France?"
UNRELATED = "Give me a recipe for banana bread."
NEAR_MISS = "What is the capital of Spain?"
THRESHOLD = 0.9  # the paraphrase is above it, the unrelated question far below (printed)


@pytest.fixture
def vendors() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="bigco") as big, \
            SimulatedVendor("openai", name="local") as local:
        yield big, local


def _config(big: SimulatedVendor, local: SimulatedVendor, **cache: Any) -> dict[str, Any]:
    return {
        "providers": {
            "bigco": {"kind": "openai-compatible", "base_url": big.url, "ownership": "external",
                      "vendor": "bigco"},
            "local": {"kind": "openai-compatible", "base_url": local.url,
                      "ownership": "in-house", "vendor": "us"},
            "embedded": {"kind": "embedded", "n_threads": 1},
        },
        "routes": {
            "chat": {"cache": {"ttl": "1h", **cache, "semantic": {
                "threshold": THRESHOLD, "embedding_route": "embed"}}, "targets": [
                    {"provider": "bigco", "model": "big-1"},
                    {"provider": "local", "model": "l-1"}]},
            "embed": {"targets": [{"provider": "embedded", "model": "smollm2-135m-instruct"}]},
        },
        "ledger": {"flush_interval": 0.05},
    }


def _ask(gw: GatewayProcess, text: str, key: str = "unused",
         stream: bool = False) -> tuple[str, dict[str, str]]:
    client = gw.client(api_key=key)
    body = {"model": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": text}],
            "temperature": 0}
    if stream:
        with client.chat.completions.with_streaming_response.create(stream=True, **body
                                                                     ) as resp:
            chunks = list(resp.parse())
            return ("".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                    dict(resp.headers))
    raw = client.chat.completions.with_raw_response.create(**body)
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_paraphrase_hits_and_an_unrelated_question_or_a_near_miss_misses(
        vendors, start_gateway: Callable[..., GatewayProcess], request: pytest.FixtureRequest,
        database: str) -> None:
    big, local = vendors
    cfg = _config(*vendors)
    if database == "postgres":  # vectors as bytea, read back as memoryviews
        cfg["server"] = {"database_url": request.getfixturevalue("postgres_url")}
    gw = start_gateway(cfg)
    text, headers = _ask(gw, QUESTION)
    assert headers["x-emancipate-cache"] == "miss" and text == f"bigco says: {QUESTION}"
    # The paraphrase gets the stored answer: nobody is called, the headers say why.
    again, headers = _ask(gw, PARAPHRASE)
    print("paraphrase similarity", headers.get("x-emancipate-cache-similarity"))
    assert (again, headers["x-emancipate-cache"]) == (text, "hit")
    assert headers["x-emancipate-cache-match"] == "semantic"
    assert THRESHOLD <= float(headers["x-emancipate-cache-similarity"]) < 1
    assert "x-emancipate-provider" not in headers
    # A stream is served too.
    streamed, headers = _ask(gw, PARAPHRASE, stream=True)
    assert (streamed, headers["x-emancipate-cache"]) == (text, "hit")
    # The very question is an exact hit: no similarity header.
    _, headers = _ask(gw, QUESTION)
    assert headers["x-emancipate-cache"] == "hit" and "x-emancipate-cache-match" not in headers
    assert len(big.received) == 1
    # An unrelated question is a miss.
    text, headers = _ask(gw, UNRELATED)
    assert headers["x-emancipate-cache"] == "miss" and text == f"bigco says: {UNRELATED}"
    # A near miss (another name, same wording: the embedded model puts it closer than the
    # paraphrase) is a miss: its names differ (`same_names`, on by default).
    text, headers = _ask(gw, NEAR_MISS)
    assert headers["x-emancipate-cache"] == "miss" and text == f"bigco says: {NEAR_MISS}"
    assert len(big.received) == 3
    # The vendors saw the questions asked, never a request to embed them.
    assert all(r.path.endswith("/chat/completions") for r in big.received + local.received)
    gw.stop()
    rows = _ledger(gw)
    assert [r["cache"] for r in rows] == ["miss", "hit", "hit", "hit", "miss", "miss"]
    assert rows[1]["cache_similarity"] >= THRESHOLD and rows[3]["cache_similarity"] is None
    assert rows[1]["target"] is None and rows[1]["cache_vendor"] == "bigco"


def _ledger(gw: GatewayProcess) -> list[dict[str, Any]]:
    assert gw.config is not None
    engine = sa.create_engine(gw.config["server"]["database_url"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT cache, cache_similarity, cache_vendor, target FROM requests "
                "WHERE endpoint = 'chat.completions' ORDER BY created_at")).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows]


def _admin_key(gw: GatewayProcess, name: str, team: str) -> str:
    r = httpx.post(f"{gw.url}/admin/keys", json={"name": name, "team": team},
                   headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def test_a_paraphrase_under_another_scope_or_policy_outcome_does_not_hit(
        vendors, tmp_path: Path) -> None:
    """Scope `team`. Keys p and o are both of team red; the policy lets only p send a
    search-engine question to bigco (o is kept in-house); key c is of team blue. Each
    difference is shown beside a control that differs in nothing else and hits."""
    big, local = vendors
    cfg = _config(big, local, scope="team")
    cfg["auth"] = {"enabled": True, "key_cache_ttl": 1}
    cfg["policy"] = {"vendors": {"bigco": {"relationships": {"search": "competitor"}}},
                     "rules": [{"class": "domain", "key": "p", "action": "allow"}]}
    with GatewayProcess(cfg, tmp_path, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as gw:
        p, o = _admin_key(gw, "p", "red"), _admin_key(gw, "o", "red")
        c = _admin_key(gw, "c", "blue")
        # Policy outcome: p's answer came from bigco; o may not have it.
        question = "How should our search engine ranking algorithm and web crawler work?"
        paraphrase = "How should the ranking algorithm and web crawler of our search engine work?"
        text, headers = _ask(gw, question, key=p)
        assert headers["x-emancipate-cache"] == "miss" and text.startswith("bigco says")
        again, headers = _ask(gw, paraphrase, key=p)  # control: same key, same outcome
        assert (again, headers["x-emancipate-cache"]) == (text, "hit")
        text, headers = _ask(gw, paraphrase, key=o)  # same team, kept in-house
        assert headers["x-emancipate-cache"] == "miss" and text.startswith("local says")
        assert len(big.received) == 1
        # Scope: o shares p's team, c does not.
        text, headers = _ask(gw, QUESTION, key=p)
        assert headers["x-emancipate-cache"] == "miss"
        again, headers = _ask(gw, PARAPHRASE, key=o)  # control: same team, same outcome
        assert (again, headers["x-emancipate-cache"]) == (text, "hit")
        assert _ask(gw, PARAPHRASE, key=c)[1]["x-emancipate-cache"] == "miss"
        assert len(big.received) == 3


PROVIDERS = ("providers: {e: {kind: embedded}, x: {kind: openai-compatible, "
             "base_url: 'http://127.0.0.1:9/v1', ownership: external, vendor: vendor-inc}}\n")


@pytest.mark.parametrize(
    ("routes", "extra", "key", "reason"),
    [
        ("embed: {targets: [{provider: e, model: m}, {provider: x, model: text-embed}]}", "",
         "routes.chat.cache.semantic.embedding_route",
         "route 'embed' has external targets (x/text-embed): the semantic cache embeds "
         "prompts in-house only"),
        ("other: {targets: [{provider: e, model: m}]}", "",
         "routes.chat.cache.semantic.embedding_route", "no route named 'embed'"),
        ("embed: {targets: [{provider: e, model: m}]}",
         "server: {redis_url: 'redis://127.0.0.1:9'}\n", "routes.chat.cache.semantic",
         "set `cache.backend: database`"),
    ],
)
def test_a_semantic_cache_that_could_show_prompts_to_a_vendor_is_refused(
        tmp_path: Path, routes: str, extra: str, key: str, reason: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(PROVIDERS + extra + "routes:\n  chat: {cache: {ttl: 1h, semantic: "
                    "{embedding_route: embed}}, targets: [{provider: x, model: m}]}\n  "
                    + routes + "\n")
    result = subprocess.run([sys.executable, "-m", "emancipate", "config", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout
    line = result.stderr.strip()
    assert line.startswith(f"emancipate: configuration error: {path}"), line
    assert f"{key}:" in line and reason in line, line


@pytest.mark.parametrize(("text", "names"), [
    ("What is the capital of France?", ["france"]),
    ("Which city is France's capital?", ["france"]),
    ("France's capital is which city?", []),  # a sentence's first word is not a name
    ("What is 17 plus 25?", ["17", "25"]),
    ("I forgot my Gmail password. How do I reset it?", ["gmail"]),
    ("What does NASA stand for? And GDPR?", ["gdpr", "nasa"]),
])
def test_the_names_and_numbers_two_questions_must_share(text: str, names: list[str]) -> None:
    assert anchors(text) == names

"""The ledger's tables at the head revision, for queries (migrations create them).

Kept next to the migrations: a change here needs a new file in ``migrations/versions``.
Never stored: message contents, detected values, key secrets (only their hash). The one
exception is opt-in: `shadow_verdicts.prompt`, see below.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

requests = Table(
    "requests", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("day", String(10)),  # UTC 'YYYY-MM-DD' (rev 0002): portable grouping and budgets
    Column("endpoint", String(32), nullable=False, server_default="chat.completions"),  # 0002
    Column("key_id", String(64), nullable=False),
    Column("team", String(200)),
    Column("route", String(200)),
    Column("target", String(400)),
    Column("provider", String(200)),
    Column("model", String(200)),
    Column("vendor", String(200)),
    Column("ownership", String(16)),
    Column("status", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("stream", Boolean, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("router_score", Float),
    Column("attempts", Integer, nullable=False),
    Column("cache", String(8)),  # rev 0010: hit, miss, bypass; NULL: the route has no cache
    Column("cache_vendor", String(200)),  # a hit: the vendor whose call it avoided
    Column("saved_cost", Float),  # a hit: what that call cost when the answer was cached
    Column("cache_similarity", Float),  # rev 0011: a semantic hit's cosine similarity
    Column("saved_tokens", Integer),  # rev 0012: a hit: the cached answer's tokens (avoided)
)

attempts = Table(
    "attempts", metadata,
    Column("request_id", String(64), ForeignKey("requests.id", ondelete="CASCADE"),
           primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("target", String(400), nullable=False),
    Column("vendor", String(200)),
    Column("ownership", String(16)),
    Column("outcome", String(64), nullable=False),
    Column("status", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("error", String(64)),
)

decisions = Table(
    "decisions", metadata,
    Column("request_id", String(64), ForeignKey("requests.id", ondelete="CASCADE"),
           primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("stage", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("rule", String(200)),
    Column("cls", String(64)),
    Column("detector", String(200)),
    Column("target", String(400)),
    Column("reason", Text, nullable=False),
)

findings = Table(
    "findings", metadata,
    Column("request_id", String(64), ForeignKey("requests.id", ondelete="CASCADE"),
           primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("cls", String(64), nullable=False),
    Column("detector", String(200), nullable=False),
    Column("domain", String(200)),
    Column("message_index", Integer, nullable=False),
)

keys = Table(
    "keys", metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("team", String(200)),
    Column("allowed_models", Text),  # JSON list; NULL: every route
    Column("budget_day", Float),
    Column("budget_month", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("rotated_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),  # rev 0006; NULL: never
)

# Rev 0003. One row per shadowed request (written by the shadow stage, no FK: the verdict may
# be committed before the request row). `inhouse_ok`: the in-house answer was judged at least
# as good as the external one (False when `verdict` is 'error': filter those out).
# `verdict`: inhouse_better | tie | external_better | error. `prompt` is stored ONLY when
# `shadow.keep_prompts` is true and the guard found nothing in the request.
shadow_verdicts = Table(
    "shadow_verdicts", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("day", String(10), nullable=False),  # UTC 'YYYY-MM-DD' of the request
    Column("route", String(200), nullable=False),
    Column("primary_target", String(400), nullable=False),
    Column("primary_ownership", String(16), nullable=False),
    Column("shadow_target", String(400), nullable=False),
    Column("shadow_ownership", String(16), nullable=False),
    Column("judge", String(200), nullable=False),  # 'exact' or the judge route's name
    Column("inhouse_ok", Boolean, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("router_score", Float),
    Column("prompt", Text),
    Column("latency_ms", Float, nullable=False),  # the shadow target's answer time
    # rev 0005: what the evaluation spent (shadow and judge calls are not request rows)
    Column("shadow_vendor", String(100)),
    Column("shadow_tokens", Integer, nullable=False, server_default="0"),
    Column("shadow_cost", Float, nullable=False, server_default="0"),
    Column("judge_target", String(400)),  # None when the answers were compared exactly
    Column("judge_vendor", String(100)),
    Column("judge_tokens", Integer, nullable=False, server_default="0"),
    Column("judge_cost", Float, nullable=False, server_default="0"),
)

contents = Table(  # rev 0004: only with `ledger.log_content`; detected values masked
    "contents", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("messages", Text, nullable=False),
    Column("answer", Text),
)

# Rev 0007. Admin identities: a key with a role (viewer | operator | admin), stored as a hash
# like a virtual key. The configured `auth.admin_key_env` key stays an admin without a row.
admins = Table(
    "admins", metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Rev 0007. A team's limits, inherited by every key whose `keys.team` is its name (the key's
# own limits further restrict it). A team label without a row here limits nothing.
teams = Table(
    "teams", metadata,
    Column("name", String(200), primary_key=True),
    Column("allowed_models", Text),  # JSON list; NULL: every route
    Column("budget_day", Float),
    Column("budget_month", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Rev 0008. The daily summary: the report's figures per UTC day, added to by the ledger writer
# in the transaction that inserts the requests (`ledger/summary.py`). Retention deletes detail
# rows, never these. Key columns are NOT NULL: '' stands for NULL, bucket -1 for no score.
def _day() -> Column[Any]:
    return Column("day", String(10), primary_key=True)


def _key(name: str, length: int) -> Column[Any]:
    return Column(name, String(length), primary_key=True, server_default="")


def _count(name: str) -> Column[Any]:
    return Column(name, BigInteger, nullable=False, server_default="0")


def _sum(name: str) -> Column[Any]:
    return Column(name, Float, nullable=False, server_default="0")


daily_traffic = Table(  # requests per served target (vendor '' = not served)
    "daily_traffic", metadata, _day(), _key("vendor", 200), _key("ownership", 16),
    _key("target", 400), _count("requests"), _count("errors"), _count("prompt_tokens"),
    _count("completion_tokens"), _sum("cost"), _count("failovers_survived"),
    _count("multi_attempt"),
)
daily_routing = Table(  # independence-router decisions per 0.01 score bucket
    "daily_routing", metadata, _day(), _key("route", 200), _key("action", 32),
    Column("bucket", Integer, primary_key=True, server_default="-1"),
    _count("requests"), _sum("score_sum"), _count("served_in_house"),
)
daily_findings = Table(  # guard findings; `requests`: requests with at least one
    "daily_findings", metadata, _day(), _key("cls", 64), _key("domain", 200),
    _key("vendor", 200), _count("findings"), _count("requests"),
)
daily_protection = Table(  # protective policy decisions per withheld/redacted target
    "daily_protection", metadata, _day(), _key("target", 400), _key("rule", 200),
    _key("cls", 64), _key("action", 32), _count("decisions"), _count("requests"),
)
daily_withheld = Table(  # requests per set of targets a protective action applied to
    "daily_withheld", metadata, _day(), _key("cls", 64), _key("action", 32),
    _key("targets_key", 40), Column("targets", Text, nullable=False), _count("requests"),
)
daily_failovers = Table(  # failed attempts inside requests that still ended 200
    "daily_failovers", metadata, _day(), _key("target", 400), _key("vendor", 200),
    _key("outcome", 64), _count("attempts"), _count("requests"),
)
daily_shadow = Table(  # shadow verdicts and what they spent
    "daily_shadow", metadata, _day(), _key("route", 200), _key("shadow_vendor", 100),
    _key("judge_vendor", 100), _count("verdicts"), _count("errors"), _count("inhouse_ok"),
    _count("shadow_tokens"), _sum("shadow_cost"), _count("judge_tokens"), _sum("judge_cost"),
)
daily_cache = Table(  # rev 0012: cache outcomes; a hit's avoided vendor ('' = none), tokens, cost
    "daily_cache", metadata, _day(), _key("route", 200), _key("cache", 8), _key("vendor", 200),
    _count("requests"), _count("semantic"), _count("saved_tokens"), _sum("saved_cost"),
)

# Rev 0009. Stored Responses (`POST /v1/responses` with `store`): readable and deletable only by
# the key that created them. `response` (the Response object) and `context` (the chat messages
# a `previous_response_id` continuation prepends) are JSON with detected values masked.
responses = Table(
    "responses", metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64)),
    Column("previous_id", String(64)),
    Column("response", Text, nullable=False),
    Column("context", Text, nullable=False),
)

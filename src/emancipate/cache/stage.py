"""The exact response cache: an answer given once is served again, without a vendor call.

A route with `cache: {ttl: …}` keeps its answers. The key is a hash of

- the canonical request: the route, and every body field that can change the answer
  (messages, sampling parameters, tools, response format, unknown fields too) — not
  `stream`, `stream_options`, `user`, `metadata`, `store`;
- the policy's outcome: which targets the request may go to and, for each, whether its body
  is redacted. A caller the policy keeps in-house never gets an answer a vendor gave to a
  caller it allowed out, and the reverse;
- the caller's scope (`scope`: the virtual key by default, its team, or `global`).

What is never cached (`x-emancipate-cache: bypass`): a request in which the guard found a
secret, personal data or a confidential term, an answer in which it finds anything (so the
cache holds no detected value, as the ledger; a request about a domain is cached, under its
policy outcome), a request sampled with temperature > 0 unless the route says `sampled: true`,
`Cache-Control: no-store`. `Cache-Control: no-cache` skips the lookup and stores the fresh
answer. Entries live in the ledger database (`cache_entries`), or in Redis when
`server.redis_url` is set, so every replica sees them.

The semantic cache (`cache: {semantic: …}`, opt-in) serves a paraphrase too: on an exact
miss the last user message is embedded by the route's in-house embedding route, and the
nearest entry of the same *partition* (the key of everything but that message's text) is a
hit when its cosine similarity reaches `threshold`. Each entry keeps its partition and unit
vector (`cache_entries.partition`, `.vector`, migration 0011); a lookup compares at most
`max_candidates` of them, the newest, in one numpy product.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

if TYPE_CHECKING:
    import numpy as np

    from emancipate.cache.config import CacheConfig, RouteCache, SemanticCache
    from emancipate.config import GatewayConfig
    from emancipate.context import Principal, RequestContext, Target
    from emancipate.guard import Guard
    from emancipate.pipeline import Prepared

log = logging.getLogger("emancipate.cache")

# Fields that do not change the answer: left out of the key.
_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store"})
# Findings whose values the cache must not hold (a domain or code finding is a topic).
_VALUES = frozenset({"secret", "personal", "confidential"})
HIT, MISS, BYPASS = "hit", "miss", "bypass"
MEMORY_BYTES = 32 * 1024 * 1024  # entries also held in this process's memory (LRU)
# (embedding route, text) -> the text's vector, from the gateway's in-house embedding targets
Embedder = Callable[[str, str], Awaitable[list[float]]]

entries = sa.table(  # `cache_entries` (migration 0010)
    "cache_entries", sa.column("key"), sa.column("route"), sa.column("created_at"),
    sa.column("expires_at"), sa.column("size"), sa.column("body"),
    sa.column("partition"), sa.column("vector"))  # migration 0011: the semantic cache


@dataclass(slots=True)
class Lookup:
    """What the cache made of one request."""

    status: str  # hit, miss or bypass
    key: str | None = None  # where to store the answer (None: do not store)
    entry: dict[str, Any] | None = None  # on a hit: {"body", "target", "vendor", ...}
    partition: str | None = None  # semantic routes: stored with the answer, with `vector`
    vector: bytes | None = None  # the last user message's unit vector, float32
    similarity: float | None = None  # a semantic hit: the cosine similarity it had


def request_key(route: str, prepared: Prepared, principal: Principal, scope: str) -> str:
    """The cache key: canonical request + the policy's outcome + the caller's scope."""
    body = {k: v for k, v in prepared.data.items() if k not in _NOT_IN_KEY}
    return _digest(route, prepared, principal, scope, body)


def last_user_text(data: dict[str, Any]) -> tuple[int, str] | None:
    """The last user message's index and text; None when it has a part that is not text
    (an image is not embedded) or there is no user message."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return None
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return (i, content) if content.strip() else None
        if isinstance(content, list) and content and all(
                isinstance(p, dict) and p.get("type") == "text" for p in content):
            return i, "\n".join(str(p.get("text") or "") for p in content)
        return None
    return None


# A number, or a capitalised word that does not start a sentence (a name, an acronym).
_ANCHOR = re.compile(r"(?<![\w'])(\d[\d.,:/]*|[A-Z][\w'’-]*)")
_PRONOUNS = frozenset({"I", "I'm", "I've", "I'd", "I'll", "I’m", "I’ve", "I’d", "I’ll"})
_SENTENCE_START = re.compile(r"(?:^|[.?!:;]\s+|\n)\s*[\"'(\[]*$")


def anchors(text: str) -> list[str]:
    """The numbers and names of `text` (lower-cased, without a possessive 's), sorted: two
    questions that differ in one of them ("... of France?" / "... of Spain?") are never
    each other's semantic hit, whatever their similarity."""
    found = set()
    for match in _ANCHOR.finditer(text):
        word = match.group(1)
        if word[0].isupper() and (word in _PRONOUNS
                                  or _SENTENCE_START.search(text, 0, match.start())):
            continue
        found.add(re.sub(r"['’]s$", "", word.rstrip(".,:/")).lower())
    return sorted(found)


def partition_key(route: str, prepared: Prepared, principal: Principal, scope: str,
                  semantic: SemanticCache, index: int, text: str) -> str:
    """The key of everything but `text`, the text of message `index` (the last user
    message), of which only the names and numbers are kept when `semantic.same_names`:
    only entries of the same partition may answer each other semantically."""
    body = {k: v for k, v in prepared.data.items() if k not in _NOT_IN_KEY}
    messages = list(body["messages"])
    messages[index] = {k: v for k, v in messages[index].items() if k != "content"}
    body["messages"] = messages
    body[" embedding_route"] = semantic.embedding_route  # vectors of one model only
    body[" names"] = anchors(text) if semantic.same_names else None
    return _digest(route, prepared, principal, scope, body)


def _digest(route: str, prepared: Prepared, principal: Principal, scope: str,
            body: dict[str, Any]) -> str:
    data = prepared.data
    outcome = sorted((t.id, prepared.body_for(t) is not data) for t in prepared.targets)
    if scope == "key":
        who = "key:" + principal.key_id
    elif scope == "team":
        who = "team:" + principal.team if principal.team else "key:" + principal.key_id
    else:
        who = "*"
    raw = orjson.dumps([route, who, outcome, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def sampled(data: dict[str, Any]) -> bool:
    """Whether the answer is drawn at random: temperature > 0, or no temperature (OpenAI's
    default is 1)."""
    temperature = data.get("temperature", 1)
    return not isinstance(temperature, int | float) or temperature > 0


class ResponseCache:
    """Lookups and stores for every route with `cache:`; None when no route has one."""

    def __init__(self, cfg: CacheConfig, engine: sa.Engine, redis: Any = None,
                 guard: Guard | None = None, prefix: str = "emancipate") -> None:
        self.cfg = cfg
        self.engine = engine
        self.redis = redis  # redis.asyncio.Redis when the entries live in Redis
        self.prefix = prefix + ":cache:"  # Redis keys: auth.redis_prefix, then the hash
        self.guard = guard
        self.embed: Embedder | None = None  # set by the gateway: its in-house embeddings
        self._tasks: set[asyncio.Task[None]] = set()
        self._puts = 0
        # The entries this process read or wrote last, in memory (LRU, at most
        # MEMORY_BYTES): a hit then costs a dict lookup, not a database or Redis round trip
        # (measured: without it a hit cost more CPU than the call it saved to a local
        # upstream). Safe across replicas: one key is one request, and expiry is kept.
        self._memory: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._memory_bytes = 0

    @classmethod
    def from_config(cls, cfg: GatewayConfig, engine: sa.Engine, guard: Guard | None
                    ) -> ResponseCache | None:
        if not any(r.cache is not None for r in cfg.routes.values()):
            return None
        client = None
        use_redis = cfg.cache.backend == "redis" or (
            cfg.cache.backend == "auto" and cfg.server.redis_url)
        if use_redis and cfg.server.redis_url:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(cfg.server.redis_url, socket_connect_timeout=2,
                                             socket_timeout=2)
        return cls(cfg.cache, engine, client, guard, cfg.auth.redis_prefix)

    # --- lookup ------------------------------------------------------------------------------

    async def lookup(self, ctx: RequestContext, rcfg: RouteCache, prepared: Prepared
                     ) -> Lookup:
        """Hit, miss (store the answer under `key`) or bypass (neither)."""
        control = (ctx.extra.get("cache_control") or "").lower()
        if ("no-store" in control or any(f.cls in _VALUES for f in ctx.findings)
                or (sampled(prepared.data) and not rcfg.sampled)):
            return Lookup(BYPASS)
        key = request_key(prepared.route.name, prepared, ctx.principal, rcfg.scope)
        if "no-cache" in control:  # the client wants a fresh answer: stored, not served
            return await self._semantic(ctx, rcfg, prepared, Lookup(BYPASS, key), serve=False)
        try:
            entry = await self._get(key)
        except Exception as exc:  # the cache must never fail a request
            log.warning("cache lookup failed: %s", exc.__class__.__name__)
            return Lookup(MISS)
        if entry is not None:
            return Lookup(HIT, key, entry)
        return await self._semantic(ctx, rcfg, prepared, Lookup(MISS, key), serve=True)

    async def _semantic(self, ctx: RequestContext, rcfg: RouteCache, prepared: Prepared,
                        lookup: Lookup, serve: bool) -> Lookup:
        """A semantic route: the nearest entry of the request's partition when `serve` and
        similar enough, else `lookup` with the partition and vector to store."""
        semantic, found = rcfg.semantic, last_user_text(prepared.data)
        if semantic is None or self.embed is None or found is None:
            return lookup
        index, text = found
        try:
            vector = _unit(await self.embed(semantic.embedding_route, text))
            partition = partition_key(prepared.route.name, prepared, ctx.principal,
                                      rcfg.scope, semantic, index, text)
            if serve:
                near = await asyncio.to_thread(self._db_nearest, partition, vector,
                                               semantic.threshold, semantic.max_candidates)
                if near is not None:
                    return Lookup(HIT, lookup.key, orjson.loads(near[0]), similarity=near[1])
        except Exception as exc:  # the cache must never fail a request
            log.warning("semantic cache lookup failed: %s", exc.__class__.__name__)
            return lookup
        return Lookup(lookup.status, lookup.key, partition=partition, vector=vector.tobytes())

    def _db_nearest(self, partition: str, vector: np.ndarray, threshold: float,
                    limit: int) -> tuple[bytes, float] | None:
        """The stored answer nearest to `vector` in `partition`, with its cosine similarity,
        if at least `threshold`: one query for the newest `limit` vectors, one product."""
        import numpy as np

        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entries.c.key, entries.c.vector)
                .where(entries.c.partition == partition, entries.c.expires_at >= now)
                .order_by(entries.c.expires_at.desc()).limit(limit)).all()
            rows = [r for r in rows if r.vector is not None and len(r.vector) == vector.nbytes]
            if not rows:
                return None
            matrix = np.frombuffer(b"".join(bytes(r.vector) for r in rows), dtype=np.float32)
            sims = matrix.reshape(len(rows), -1) @ vector
            best = int(sims.argmax())
            if float(sims[best]) < threshold:
                return None
            body = conn.execute(sa.select(entries.c.body).where(
                entries.c.key == rows[best].key, entries.c.expires_at >= now)).scalar()
        return (bytes(body), float(sims[best])) if body is not None else None

    async def _get(self, key: str) -> dict[str, Any] | None:
        now = time.time()
        held = self._memory.get(key)
        if held is not None:
            if held[0] > now:
                self._memory.move_to_end(key)
                return orjson.loads(held[1])
            self._forget(key)
        if self.redis is not None:
            name = self.prefix + key
            async with self.redis.pipeline(transaction=False) as pipe:
                raw, ms = await pipe.get(name).pttl(name).execute()
            expires = now + max(0, ms or 0) / 1000
        else:
            raw, expires = await asyncio.to_thread(self._db_get, key)
        if raw is None:
            return None
        self._remember(key, expires, raw)
        return orjson.loads(raw)

    def _remember(self, key: str, expires: float, raw: bytes) -> None:
        self._forget(key)
        self._memory[key] = (expires, raw)
        self._memory_bytes += len(raw)
        while self._memory_bytes > MEMORY_BYTES:
            _, (_, old) = self._memory.popitem(last=False)
            self._memory_bytes -= len(old)

    def _forget(self, key: str) -> None:
        held = self._memory.pop(key, None)
        if held is not None:
            self._memory_bytes -= len(held[1])

    def _db_get(self, key: str) -> tuple[bytes | None, float]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(entries.c.body, entries.c.expires_at)
                               .where(entries.c.key == key)).first()
        if row is None or row.expires_at < time.time():
            return None, 0.0
        return bytes(row.body), float(row.expires_at)

    # --- store -------------------------------------------------------------------------------

    def store(self, key: str, route: str, ttl: float, body: dict[str, Any],
              target: Target | None, partition: str | None = None,
              vector: bytes | None = None) -> None:
        """Keep `body` for `ttl` seconds, in the background; never an answer in which the
        guard finds anything, nor one larger than `cache.max_entry_bytes`."""
        if target is None or self._sensitive(body):
            return
        entry = {"body": body, "target": target.id, "provider": target.provider,
                 "model": target.model, "vendor": target.vendor, "ownership": target.ownership}
        raw = orjson.dumps(entry)
        if len(raw) > self.cfg.max_entry_bytes:
            return
        task = asyncio.ensure_future(self._put(key, route, ttl, raw, partition, vector))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sensitive(self, body: dict[str, Any]) -> bool:
        if self.guard is None:
            return False
        texts = []
        for choice in body.get("choices") or ():
            msg = choice.get("message") or {}
            if isinstance(msg.get("content"), str):
                texts.append(msg["content"])
            for call in msg.get("tool_calls") or ():
                texts.append(str((call.get("function") or {}).get("arguments") or ""))
        return bool(texts) and any(f.cls in _VALUES for f in self.guard.scan("\n".join(texts)))

    async def _put(self, key: str, route: str, ttl: float, raw: bytes,
                   partition: str | None = None, vector: bytes | None = None) -> None:
        try:
            if self.redis is not None:
                await self.redis.set(self.prefix + key, raw, ex=max(1, round(ttl)))
            else:
                await asyncio.to_thread(self._db_put, key, route, ttl, raw, partition, vector)
            self._remember(key, time.time() + ttl, raw)
        except Exception as exc:
            log.warning("cache store failed: %s", exc.__class__.__name__)

    def _db_put(self, key: str, route: str, ttl: float, raw: bytes,
                partition: str | None = None, vector: bytes | None = None) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(entries).where(entries.c.key == key))
            conn.execute(sa.insert(entries).values(key=key, route=route, created_at=now,
                                                   expires_at=now + ttl, size=len(raw),
                                                   body=raw, partition=partition,
                                                   vector=vector))
        self._puts += 1
        if self._puts % 100 == 1:
            self.evict(now)

    def evict(self, now: float | None = None) -> int:
        """Delete expired entries, then the ones that expire first past `max_entries`."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(entries).where(entries.c.expires_at < now)).rowcount
            count = conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one()
            excess = count - self.cfg.max_entries
            if excess > 0:
                oldest = (sa.select(entries.c.key).order_by(entries.c.expires_at)
                          .limit(excess).scalar_subquery())
                gone += conn.execute(sa.delete(entries).where(entries.c.key.in_(oldest))
                                     ).rowcount
        return int(gone or 0)

    async def aclose(self) -> None:
        if self._tasks:  # stores in flight finish: they are a few milliseconds each
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.redis is not None:
            await self.redis.aclose()


def _unit(vector: list[float]) -> np.ndarray:
    """`vector` as float32 scaled to length 1 (a zero vector stays zero: it matches nothing)."""
    import numpy as np

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def stream_of(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A cached chat completion as the chunks of a stream (one delta per choice)."""
    base = {k: body.get(k) for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    chunks = []
    for choice in body.get("choices") or ():
        msg = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": msg.get("content")}
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": i}
                                   for i, call in enumerate(msg["tool_calls"])]
        index = choice.get("index", 0)
        chunks.append({**base, "choices": [{"index": index, "delta": delta,
                                            "logprobs": None, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": index, "delta": {}, "logprobs": None,
                                            "finish_reason": choice.get("finish_reason")}]})
    if include_usage and body.get("usage"):
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


class Assembler:
    """Rebuilds a chat completion from the chunks of a stream (choice 0; text and tool
    calls), so a streamed answer can be cached; `body()` is None when it cannot be."""

    __slots__ = ("content", "finish", "first", "calls", "usage", "whole")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.finish: str | None = None
        self.first: dict[str, Any] | None = None
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.whole = True

    def feed(self, chunk: dict[str, Any]) -> None:
        if self.first is None:
            self.first = chunk
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                self.whole = False  # n > 1: not cached
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(call.get("index", 0), {
                    "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def body(self) -> dict[str, Any] | None:
        if not self.whole or self.first is None or self.finish is None:
            return None
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(self.content) if self.content else None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return {"id": self.first.get("id"), "object": "chat.completion",
                "created": self.first.get("created"), "model": self.first.get("model"),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self.finish}],
                "usage": self.usage}


__all__ = ["BYPASS", "HIT", "MISS", "Assembler", "Embedder", "Lookup", "ResponseCache",
           "last_user_text", "partition_key", "request_key", "stream_of"]

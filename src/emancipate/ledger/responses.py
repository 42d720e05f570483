"""Stored Responses: what `POST /v1/responses` keeps for `previous_response_id`, GET and DELETE.

A stored response is readable and deletable only by the key that created it: every query
filters on `key_id`, so another key's id is indistinguishable from an unknown one.

What is kept follows the `ledger.log_content` rule: every value the guard detects is masked
(`ledger.content.mask`) before the row is written, so the store never holds a detected secret,
whatever the client's `store` says. Only texts are masked (message contents, tool-call
arguments, tool outputs, instructions, metadata values); ids are kept as they are, since a
continuation must pair each tool output with its call.

Every method blocks (SQL, and the guard's scan of what is masked): call them off the event
loop (`auth.blocking.DaemonPool`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.dialects import postgresql

from emancipate.ledger import schema
from emancipate.ledger.content import mask, masked

ChatMessage = dict[str, Any]
Row = dict[str, Any]  # a `responses` row, masked, ready to insert
# Texts up to this size are masked on the event loop (as `guard.offload` scans inline below
# the same size), larger ones in the writer thread.
INLINE_CHARS = 8192


@dataclass(slots=True)
class StoredResponse:
    """One stored response: the Response object and the conversation a continuation sees."""

    id: str
    key_id: str
    created_at: float
    response: dict[str, Any]
    context: list[ChatMessage]  # chat messages, the answer last; instructions not included
    request_id: str | None = None
    previous_id: str | None = None
    # Leading `context` messages (and the instructions) the guard already read in this
    # request and found nothing in: masking skips them (a scan costs ~0.3 ms per KB).
    scanned_clean: int = 0


class ResponseStore:
    """The `responses` table (migration 0009), scoped by key."""

    def __init__(self, engine: Engine, guard: Any = None) -> None:
        self.engine = engine
        self.guard = guard  # None: the guard is off, nothing is detected, nothing masked

    def save(self, stored: StoredResponse) -> None:
        """Mask, then insert (idempotent on the id)."""
        self.save_many([stored])

    def save_many(self, batch: list[StoredResponse | Row]) -> None:
        """Mask each (unless it is a `row` already), then insert them all in one transaction
        (idempotent on the ids)."""
        rows = [item if isinstance(item, dict) else self.row(item) for item in batch]
        table = schema.responses
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":  # straight to the driver: SQLAlchemy's
                # statement handling cost more than the insert (0.84 → 0.28 ms a response)
                conn.exec_driver_sql(_SQLITE_INSERT, [
                    tuple(_sqlite_value(row[c.name]) for c in table.columns) for row in rows])
            else:
                conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)

    def row(self, stored: StoredResponse) -> Row:
        """The table row of `stored`, its texts masked (CPU: ~0.3 ms per KB to scan)."""
        clean = stored.scanned_clean
        # The answer is both in the output and in the context: one scan.
        guard = _Once(self.guard) if self.guard is not None else None
        context = stored.context[:clean] + masked_context(stored.context[clean:], guard)
        return {
            "id": stored.id[:64], "key_id": stored.key_id[:64],
            "created_at": datetime.fromtimestamp(stored.created_at, UTC),
            "request_id": stored.request_id, "previous_id": stored.previous_id,
            "response": orjson.dumps(masked_response(stored.response, guard,
                                                     instructions=not clean)).decode(),
            "context": orjson.dumps(context).decode(),
        }

    def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The response `response_id` if `key_id` created it, else None."""
        table = schema.responses
        stmt = select(table).where(and_(table.c.id == response_id, table.c.key_id == key_id))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        created = row.created_at
        if created.tzinfo is None:  # SQLite returns naive UTC
            created = created.replace(tzinfo=UTC)
        return StoredResponse(
            id=row.id, key_id=row.key_id, created_at=created.timestamp(),
            response=orjson.loads(row.response), context=orjson.loads(row.context),
            request_id=row.request_id, previous_id=row.previous_id,
        )

    def delete(self, response_id: str, key_id: str) -> bool:
        """Delete `response_id` if `key_id` created it; whether a row went."""
        table = schema.responses
        stmt = delete(table).where(and_(table.c.id == response_id, table.c.key_id == key_id))
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)


class ResponseWriter:
    """Stores responses from the event loop in group commits, on one thread of its own.

    Each `save` waits for the commit of its response (the client must be able to continue
    from it at once), but every response that arrives while a transaction commits goes into
    the next one, so under load one commit carries many. One writer also means SQLite never
    has writers queued behind each other: with four threads committing one response each,
    16 concurrent streams stored 121-159 responses a second, with this writer 216-259 (quick
    runs of `bench/run.py --only emancipate --responses` on a busy 2-core machine;
    docs/benchmarks.md, "Responses API streaming").
    """

    def __init__(self, store: ResponseStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: collections.deque[tuple[StoredResponse | Row, Any, Any]] = \
            collections.deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def save(self, stored: StoredResponse, timeout: float) -> None:
        """Return once `stored` is committed; TimeoutError after `timeout` seconds (the
        write may still land: it is idempotent and harmless)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # Retrieved even when no one awaits it any more (a timeout, a client gone).
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        item: StoredResponse | Row = stored
        if _unscanned_chars(stored) <= INLINE_CHARS:  # masked here: a hand-off to the writer
            item = self.store.row(stored)  # thread costs more than a short scan (the GIL)
        self._pending.append((item, loop, done))
        self._start()
        self._wake.set()
        await asyncio.wait_for(asyncio.shield(done), timeout)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:  # a daemon: a hung database cannot hold up exit
                    self._thread = threading.Thread(target=self._run, name="responses-writer",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft()
                         for _ in range(min(len(self._pending), self.max_batch))]
                try:
                    self.store.save_many([stored for stored, _, _ in batch])
                    error: BaseException | None = None
                except Exception as exc:  # handed to each waiting request, which logs it
                    error = exc
                for _, loop, done in batch:
                    with contextlib.suppress(RuntimeError):  # the event loop is gone
                        loop.call_soon_threadsafe(_settle, done, error)


def _unscanned_chars(stored: StoredResponse) -> int:
    """About how many characters masking `stored` scans (the answer counts once)."""
    return sum(len(str(m.get("content") or "")) + sum(
        len((c.get("function") or {}).get("arguments") or "") for c in m.get("tool_calls") or ())
        for m in stored.context[stored.scanned_clean:])


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class _Once:
    """A guard that scans each distinct text once (`ledger.content.mask` calls `scan`)."""

    def __init__(self, guard: Any) -> None:
        self.guard = guard
        self.seen: dict[str, Any] = {}

    def scan(self, text: str) -> Any:
        found = self.seen.get(text)
        if found is None:
            found = self.seen[text] = self.guard.scan(text)
        return found


def masked_context(messages: list[ChatMessage], guard: Any) -> list[ChatMessage]:
    """Chat messages with their texts masked (content, text parts, tool-call arguments)."""
    out = []
    for message in messages:
        message = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = mask(content, guard)
        elif isinstance(content, list):
            message["content"] = [
                {**part, "text": mask(part["text"], guard)}
                if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                for part in content]
        if message.get("tool_calls"):
            message["tool_calls"] = [_masked_call(call, guard) for call in message["tool_calls"]]
        out.append(message)
    return out


def _masked_call(call: dict[str, Any], guard: Any) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    if isinstance(function.get("arguments"), str):
        function["arguments"] = mask(function["arguments"], guard)
    return {**call, "function": function}


_SQLITE_INSERT = (f"INSERT INTO responses ({', '.join(c.name for c in schema.responses.columns)}) "
                  f"VALUES ({', '.join('?' * len(schema.responses.columns))}) "
                  "ON CONFLICT DO NOTHING")


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite DateTime stores: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def masked_response(response: dict[str, Any], guard: Any, *,
                    instructions: bool = True) -> dict[str, Any]:
    """A Response object with its texts masked: output texts, call arguments, metadata
    values, and the instructions unless `instructions` is False (already read clean)."""
    out = dict(response)
    items = []
    for item in response.get("output") or ():
        item = dict(item)
        if isinstance(item.get("arguments"), str):
            item["arguments"] = mask(item["arguments"], guard)
        if isinstance(item.get("content"), list):
            item["content"] = [
                {**part, "text": mask(part["text"], guard)}
                if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                for part in item["content"]]
        items.append(item)
    out["output"] = items
    if instructions and isinstance(out.get("instructions"), str):
        out["instructions"] = mask(out["instructions"], guard)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = masked(out["metadata"], guard)
    return out


__all__ = ["ChatMessage", "ResponseStore", "ResponseWriter", "StoredResponse", "masked_context",
           "masked_response"]

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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.dialects import postgresql

from emancipate.ledger import schema
from emancipate.ledger.content import mask, masked

ChatMessage = dict[str, Any]


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
        clean = stored.scanned_clean
        context = stored.context[:clean] + masked_context(stored.context[clean:], self.guard)
        row = {
            "id": stored.id[:64], "key_id": stored.key_id[:64],
            "created_at": datetime.fromtimestamp(stored.created_at, UTC),
            "request_id": stored.request_id, "previous_id": stored.previous_id,
            "response": orjson.dumps(masked_response(stored.response, self.guard,
                                                     instructions=not clean)).decode(),
            "context": orjson.dumps(context).decode(),
        }
        table = schema.responses
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":  # straight to the driver: SQLAlchemy's
                # statement handling cost more than the insert (0.84 → 0.28 ms a response)
                conn.exec_driver_sql(_SQLITE_INSERT, tuple(
                    _sqlite_value(row[c.name]) for c in table.columns))
            else:
                conn.execute(postgresql.insert(table).on_conflict_do_nothing(), [row])

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


__all__ = ["ChatMessage", "ResponseStore", "StoredResponse", "masked_context",
           "masked_response"]

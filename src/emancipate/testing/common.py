"""What both simulated wire protocols share: the answer container and the fake "model".

The model is deterministic on purpose: a test can compute the exact expected answer, token
counts and stream pieces from the request alone.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ReplyFn = Callable[[dict[str, Any]], str]
Finish = Literal["end", "length", "stop_sequence", "tool"]


@dataclass
class Answer:
    """What a handler decided to send: a JSON body, or a list of SSE events (a stream)."""

    status: int
    body: Any = None
    events: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # of a stream; `text/event-stream` when None
    pieces: int = 1  # token pieces generated: SlowTokens paces non-streaming answers by it

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Generation:
    """One generated answer after stop sequences and the token limit were applied."""

    text: str
    finish: Finish
    stop_sequence: str | None
    pieces: list[str]

    @property
    def tokens(self) -> int:
        return count_tokens(self.text)


def count_tokens(text: str) -> int:
    """Tokens are whitespace-separated words: easy to predict in a test."""
    return len(text.split())


def schema_value(schema: dict[str, Any], text: str) -> Any:
    """A value that satisfies a simple schema (JSON Schema or Gemini's OpenAPI subset: types,
    `properties`, `items`, `enum`), derived from `text`: what a simulated model answers when
    held to a schema (Gemini's `responseSchema`, Bedrock's forced tool)."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):  # ["string", "null"]: the first real type
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: schema_value(v, text) for k, v in props.items()}
    if kind == "array":
        return [schema_value(schema.get("items") or {"type": "string"}, text)]
    if kind in ("integer", "number"):
        return count_tokens(text)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def word_pieces(text: str) -> list[str]:
    """Split into word pieces, each carrying its leading whitespace; they join back to `text`."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)):]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces = [tail]
    return pieces


def split_pieces(text: str, chunks: int | None) -> list[str]:
    """Stream pieces: one per word, or words grouped evenly into `chunks` pieces."""
    words = word_pieces(text)
    if chunks is None or chunks >= len(words):
        return words
    per, extra = divmod(len(words), max(chunks, 1))
    out, i = [], 0
    for k in range(max(chunks, 1)):
        take = per + (1 if k < extra else 0)
        out.append("".join(words[i:i + take]))
        i += take
    return out


def generate(text: str, *, max_tokens: int | None, stops: list[str],
             chunks: int | None) -> Generation:
    """Apply stop sequences then the token limit, as a model would while generating."""
    finish: Finish = "end"
    stop_sequence = None
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, finish = text[:index], "stop_sequence"
    if max_tokens is not None and count_tokens(text) > max_tokens:
        text = "".join(word_pieces(text)[:max(max_tokens, 0)])
        finish, stop_sequence = "length", None
    return Generation(text, finish, stop_sequence, split_pieces(text, chunks))


def tool_arguments(last_user_text: str) -> str:
    """The arguments every simulated tool call carries: the user's text, echoed."""
    return json.dumps({"echo": last_user_text})


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def stops_of(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []


def text_of(content: Any) -> str:
    """Text of a message content: a string, or the text parts/blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return ""


def retry_after_header(seconds: float | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": f"{seconds:g}"}

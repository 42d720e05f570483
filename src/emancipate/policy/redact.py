"""Reversible redaction: placeholders out, real values back in the answer.

Placeholders look like `[EMAIL_1]`: upper-case label, number, square brackets. Models copy
them verbatim, they survive tokenisation, and the plan never picks one that already occurs
in the request, so restoring cannot turn the user's own text into something else.
"""

from __future__ import annotations

import json
import re
from typing import Any

from emancipate.guard.text import message_segments
from emancipate.guard.view import Path, value_at

PLACEHOLDER = re.compile(r"\[[A-Z]{2,12}_\d{1,5}\]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')

Span = tuple[int, int, str]  # start, end, placeholder (offsets into the string at a path)


class Restorer:
    """Puts the real values back into what a vendor answered.

    `restore` for a whole text; `feed`/`flush` for a stream, holding back the tail of a
    delta that may be the beginning of a placeholder (`[EMA`) until it is complete or
    proven not to be one. One instance per stream (it keeps that stream's buffer);
    `restore_chunk` does it for OpenAI stream chunks, with one buffer per channel (each
    choice's content, each of its tool calls' arguments), so choices and tool calls that a
    vendor interleaves never share a held-back tail."""

    __slots__ = ("_map", "_buf", "_max", "_json", "_channels")

    def __init__(self, mapping: dict[str, str], json_strings: bool = False) -> None:
        self._map = mapping
        self._buf = ""
        self._max = max((len(k) for k in mapping), default=0)
        self._json = json_strings  # a stream of JSON text (tool-call arguments)
        self._channels: dict[tuple[Any, ...], Restorer] | None = None

    @property
    def placeholders(self) -> dict[str, str]:
        return dict(self._map)

    def restore(self, text: str) -> str:
        """Every known placeholder replaced by its value. Inside a JSON string literal (tool
        call arguments) the value is JSON-escaped so the arguments stay valid JSON."""
        if "[" not in text or not self._map:
            return text
        strings: list[tuple[int, int]] | None = None
        mapping = self._map

        def repl(m: re.Match[str]) -> str:
            nonlocal strings
            value = mapping.get(m.group())
            if value is None:
                return m.group()
            if _NEEDS_ESCAPE.search(value):
                if self._json:  # a piece of streamed arguments: placeholders sit in strings
                    return json.dumps(value, ensure_ascii=False)[1:-1]
                if text.lstrip()[:1] in ("{", "["):
                    if strings is None:
                        strings = [s.span() for s in _JSON_STRING.finditer(text)]
                    if any(s < m.start() and m.end() < e for s, e in strings):
                        return json.dumps(value, ensure_ascii=False)[1:-1]
            return value

        return PLACEHOLDER.sub(repl, text)

    def feed(self, delta: str) -> str:
        """Streaming: what can be shown now; a possible partial placeholder waits."""
        buf = self._buf + delta
        cut = len(buf)
        i = buf.rfind("[")
        if i != -1 and "]" not in buf[i:] and len(buf) - i < self._max:
            tail = buf[i:]
            if any(p.startswith(tail) for p in self._map):
                cut = i
        self._buf = buf[cut:]
        return self.restore(buf[:cut])

    def flush(self) -> str:
        """End of stream: whatever was held back (with `restore_chunk`: the content of the
        choices that never sent a finish_reason)."""
        out, self._buf = self._buf, ""
        out = self.restore(out)
        for key, channel in sorted((self._channels or {}).items(), key=lambda kv: kv[0]):
            if key[1] == "content":
                out += channel.flush()
        self._channels = None
        return out

    def _channel(self, key: tuple[Any, ...]) -> Restorer:
        if self._channels is None:
            self._channels = {}
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = Restorer(
                self._map, json_strings=key[1] in ("tool", "function_call"))
        return channel

    def restore_chunk(self, chunk: dict[str, Any]) -> None:
        """Restore one OpenAI `chat.completion.chunk` in place. What a channel holds back is
        released with the choice's `finish_reason` (appended to that chunk's delta)."""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            if isinstance(delta.get("content"), str) and delta["content"]:
                delta["content"] = self._channel((index, "content")).feed(delta["content"])
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    key: tuple[Any, ...] = (index, "tool", call.get("index", 0))
                    fn["arguments"] = self._channel(key).feed(fn["arguments"])
                custom = call.get("custom") if isinstance(call, dict) else None
                if isinstance(custom, dict) and isinstance(custom.get("input"), str):
                    key = (index, "custom", call.get("index", 0))  # free text, not JSON
                    custom["input"] = self._channel(key).feed(custom["input"])
            legacy = delta.get("function_call")
            if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
                key = (index, "function_call")
                legacy["arguments"] = self._channel(key).feed(legacy["arguments"])
            if choice.get("finish_reason") and self._channels:
                self._release(index, delta)

    def _release(self, index: Any, delta: dict[str, Any]) -> None:
        assert self._channels is not None
        for key in sorted(k for k in self._channels if k[0] == index):
            tail = self._channels.pop(key).flush()
            if not tail:
                continue
            if key[1] == "content":
                delta["content"] = (delta.get("content") or "") + tail
                continue
            if key[1] == "function_call":
                legacy = delta.setdefault("function_call", {})
                legacy["arguments"] = (legacy.get("arguments") or "") + tail
                continue
            field, value = ("function", "arguments") if key[1] == "tool" else ("custom", "input")
            calls = delta.setdefault("tool_calls", [])
            call = next((c for c in calls if c.get("index", 0) == key[2]), None)
            if call is None:
                calls.append({"index": key[2], field: {value: tail}})
            else:
                inner = call.setdefault(field, {})
                inner[value] = (inner.get(value) or "") + tail


def redact_message(message: dict[str, Any], spans: list[Span],
                   whole_args: dict[str, str]) -> dict[str, Any]:
    """A copy of `message` with `spans` (offsets into its message_text) replaced.

    Only the parts that change are copied. Tool-call arguments stay valid JSON: if cutting
    inside them would break it, the whole arguments string is replaced by a JSON object
    holding one placeholder (recorded in `whole_args`: placeholder -> original)."""
    out = dict(message)
    pos = 0
    parts: list[Any] | None = None
    calls: list[Any] | None = None
    for loc, text in message_segments(message):
        seg_start, seg_end = pos, pos + len(text)
        pos = seg_end + 1
        local = [(max(s, seg_start) - seg_start, min(e, seg_end) - seg_start, ph)
                 for s, e, ph in spans if s < seg_end and e > seg_start]
        if not local:
            continue
        new = _replace(text, local)
        if loc[0] in ("tool_call", "function_call") and _was_json(text) and not _is_json(new):
            ph = next((p for p, v in whole_args.items() if v == text), None)
            if ph is None:
                ph = _fresh("ARGS", whole_args, text)
                whole_args[ph] = text
            new = json.dumps({"redacted": ph})
        if loc[0] == "content":
            out["content"] = new
        elif loc[0] == "part":
            if parts is None:
                parts = list(out["content"])
                out["content"] = parts
            parts[loc[1]] = {**parts[loc[1]], "text": new}
        elif loc[0] == "tool_call":
            if calls is None:
                calls = list(out["tool_calls"])
                out["tool_calls"] = calls
            call = calls[loc[1]]
            calls[loc[1]] = {**call, "function": {**call["function"], "arguments": new}}
        else:
            out["function_call"] = {**out["function_call"], "arguments": new}
    return out


def redact_body(body: dict[str, Any], spans: dict[Path, list[Span]],
                whole_args: dict[str, str]) -> dict[str, Any]:
    """A copy of `body` with the spans of each path replaced (offsets into the string at
    that path, `guard.view`). Only the containers on the way to a changed string are
    copied. Tool-call arguments stay valid JSON (as `redact_message`)."""
    out = dict(body)
    for path, local in spans.items():
        text = value_at(body, path)
        new = _replace(text, local)
        if path[-1] == "arguments" and _was_json(text) and not _is_json(new):
            ph = next((p for p, v in whole_args.items() if v == text), None)
            if ph is None:
                ph = _fresh("ARGS", whole_args, text)
                whole_args[ph] = text
            new = json.dumps({"redacted": ph})
        _set(out, body, path, new)
    return out


def _set(out: dict[str, Any], original: dict[str, Any], path: Path, value: str) -> None:
    """Set `value` at `path` in `out`, copying each container still shared with
    `original` on the way."""
    holder: Any = out
    source: Any = original
    for step in path[:-1]:
        child = holder[step]
        source = source[step] if source is not None else None
        if child is source:  # still the caller's: copy before writing into it
            child = dict(child) if isinstance(child, dict) else list(child)
            holder[step] = child
        holder = child
    holder[path[-1]] = value


def _fresh(label: str, taken: dict[str, str], text: str) -> str:
    n = 1
    while f"[{label}_{n}]" in taken or f"[{label}_{n}]" in text:
        n += 1
    return f"[{label}_{n}]"


def _replace(text: str, spans: list[Span]) -> str:
    pieces: list[str] = []
    last = 0
    for s, e, ph in sorted(spans):
        if s < last:  # overlaps were merged before; never cut twice
            continue
        pieces.append(text[last:s])
        pieces.append(ph)
        last = e
    pieces.append(text[last:])
    return "".join(pieces)


def _was_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[") and _is_json(text)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True

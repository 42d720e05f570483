"""What will be sent: every string of a request body, each with where it lives.

The guard scans the body a vendor will receive, not a summary of it. A vendor adapter
either forwards the OpenAI body as is (`openai_compatible`) or translates a subset of it
(`anthropic`), so every string of the body is what can leave; `segments_of` lists them all,
with a *path* into the body: `("messages", 1, "content")`, `("messages", 1, "content", 2,
"text")`, `("tools", 0, "function", "description")`, `("user",)`. Finding offsets are
offsets into the string at their path, and the policy redacts there.

Not scanned, because they cannot carry user data (written down in
docs/guard-and-policy.md, "What the guard sees"):

* `model` (the route name; the adapter replaces it by the target's model),
* enumerations: `role`, every `type`, `image_url.detail`, `input_audio.format`,
  `reasoning_effort`, `service_tier`, `modalities`, `encoding_format`, a string
  `tool_choice` (`none`, `auto`, `required`),
* numbers, booleans and nulls (`n`, `temperature`, `max_tokens`, `stream`, `seed`…).

Everything else is scanned, field names of free-form objects included (a JSON-schema
property name is sent too). Fields the gateway does not know are scanned or dropped from
the body before it is sent (`guard.unknown_fields`); never forwarded unscanned.

Some strings cannot carry a placeholder: a URL (`image_url.url`, `data:` URLs), a name the
vendor validates (`messages[].name`, function names) and field names. A finding there is
*not redactable*: the policy keeps the request away from a target it would have redacted
for (`redactable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from emancipate.guard.normalize import base64_only, decoded_text

Path = tuple[Any, ...]
Encoding = Literal["text", "data_url", "base64"]
UnknownFields = Literal["scan", "drop"]


@dataclass(frozen=True, slots=True)
class Key:
    """Path element: the *name* of the n-th key of the object before it (names are sent
    too; the position, not the name, so that a path never holds a scanned value)."""

    n: int


@dataclass(slots=True)
class Segment:
    """One string of the body: where it is, its text, the message it belongs to (-1 for
    request-level fields) and whether a placeholder may replace part of it."""

    path: Path
    text: str
    message: int = -1
    redactable: bool = True
    encoding: Encoding = "text"


@dataclass(slots=True)
class RequestView:
    """The strings a request will send, and the body to send (unknown fields dropped under
    `guard.unknown_fields: drop`; otherwise the body itself)."""

    segments: list[Segment]
    body: dict[str, Any]
    token_ids: bool = False  # embeddings input given as token ids: nothing to read
    size: int = 0  # characters the detectors will read (the scan budget counts these)
    dropped: list[str] = field(default_factory=list)  # described paths of dropped fields
    # `file_data` the guard cannot read (a PDF, an office document): path and media type
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


_CHAT_TOP = frozenset({
    "model", "messages", "stream", "stream_options", "n", "stop", "max_tokens",
    "max_completion_tokens", "temperature", "top_p", "seed", "presence_penalty",
    "frequency_penalty", "response_format", "tools", "tool_choice", "user", "logprobs",
    "top_logprobs", "logit_bias", "parallel_tool_calls", "metadata", "store", "service_tier",
    "reasoning_effort", "modalities", "audio", "prediction", "web_search_options",
    "functions", "function_call", "safety_identifier", "prompt_cache_key", "verbosity",
})
_EMBEDDINGS_TOP = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_MESSAGE = frozenset({"role", "content", "name", "tool_calls", "tool_call_id",
                      "function_call", "refusal", "audio"})
_PART = frozenset({"type", "text", "image_url", "input_audio", "file", "refusal"})
# Enumerations and the route name: never user data (strings only; anything else is walked).
_NOT_DATA_TOP = frozenset({"model", "reasoning_effort", "service_tier", "modalities",
                           "encoding_format", "tool_choice", "verbosity"})
# `type` values that are enumerations of the API or of JSON Schema, never data.
_TYPES = frozenset({"function", "text", "json_object", "json_schema", "content", "custom",
                    "image_url", "input_audio", "file", "string", "object", "array", "number",
                    "integer", "boolean", "null", "auto", "none", "required", "allowed_tools"})
_BINARY_MEDIA = ("image/", "audio/", "video/", "application/octet-stream", "application/pdf")


# What one string costs the scan beyond its characters (path, segment, view, mapping:
# ~5 µs, the time of ~32 characters of prose): counted in `RequestView.size`, so a body of
# a million one-character strings is over the budget, not a million tiny scans.
STRING_COST = 32


class TooManyStrings(Exception):
    """`segments_of(..., max_strings=n)` met more than n strings (the caller walks the
    body again off the event loop)."""


def segments_of(body: dict[str, Any], kind: Literal["chat", "embeddings"] = "chat",
                unknown: UnknownFields = "scan", max_strings: int | None = None
                ) -> RequestView:
    """Every string of `body` that will be sent, in body order; `TooManyStrings` past
    `max_strings`."""
    walk = _Walk(unknown, max_strings)
    known = _CHAT_TOP if kind == "chat" else _EMBEDDINGS_TOP
    out_body = body
    for n, (key, value) in enumerate(body.items()):
        if key not in known:
            if walk.unknown_field((key,), n, key):
                continue
        elif key in _NOT_DATA_TOP and (isinstance(value, str) or key == "modalities"):
            continue
        elif key == "messages" and isinstance(value, list):
            for i, message in enumerate(value):
                walk.message(message, i)
            continue
        elif key == "input" and kind == "embeddings" and isinstance(value, list) and any(
                not isinstance(v, str) for v in value):
            walk.token_ids = True
        walk.value(value, (key,))
    if walk.drops:
        out_body = _without(body, walk.drops)
    size = sum(len(s.text) for s in walk.out if s.encoding == "text")
    size += sum(_payload_size(s) for s in walk.out if s.encoding != "text")
    size += STRING_COST * len(walk.out)
    return RequestView(walk.out, out_body, walk.token_ids, size,
                       [describe(p) for p in walk.drops], walk.unreadable)


class _Walk:
    __slots__ = ("out", "unknown", "drops", "token_ids", "unreadable", "_message", "_left")

    def __init__(self, unknown: UnknownFields, max_strings: int | None = None) -> None:
        self._left = -1 if max_strings is None else max_strings
        self.out: list[Segment] = []
        self.unknown = unknown
        self.drops: list[Path] = []
        self.token_ids = False
        self.unreadable: list[tuple[Path, str]] = []
        self._message = -1

    def add(self, path: Path, text: str, encoding: Encoding = "text") -> None:
        if text:
            self._left -= 1
            if self._left == -1:
                raise TooManyStrings
            if encoding == "text" and text.startswith("data:") and ";base64," in text[:256]:
                encoding = "data_url"
            self.out.append(Segment(path, text, self._message, redactable(path, text),
                                    encoding))

    def unknown_field(self, path: Path, n: int, key: str) -> bool:
        """True if the field (the n-th of its object) is dropped; otherwise its name and
        value are scanned."""
        if self.unknown == "drop":
            self.drops.append(path)
            return True
        self.add(path[:-1] + (Key(n),), key)
        return False

    def value(self, value: Any, path: Path) -> None:
        """Any JSON value: strings, list items, object field names and values."""
        if isinstance(value, str):
            self.add(path, value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.value(item, path + (i,))
        elif isinstance(value, dict):
            for n, (k, v) in enumerate(value.items()):
                if k == "type" and v in _TYPES:
                    continue
                if k not in _KNOWN_NAMES:  # the API's and JSON Schema's own words are not data
                    self.add(path + (Key(n),), str(k))
                self.value(v, path + (k,))

    def message(self, message: Any, i: int) -> None:
        path: Path = ("messages", i)
        self._message = i
        if not isinstance(message, dict):
            self.value(message, path)
        else:
            for n, (key, value) in enumerate(message.items()):
                here = path + (key,)
                if key not in _MESSAGE:
                    if not self.unknown_field(here, n, key):
                        self.value(value, here)
                elif key == "role" and isinstance(value, str):
                    continue
                elif key == "content" and isinstance(value, list):
                    for j, part in enumerate(value):
                        self.part(part, here + (j,))
                elif key in ("tool_calls", "function_call"):
                    calls = value if key == "tool_calls" else [value]
                    for k, call in enumerate(calls if isinstance(calls, list) else [calls]):
                        self.call(call, here + (k,) if key == "tool_calls" else here)
                else:
                    self.value(value, here)
        self._message = -1

    def part(self, part: Any, path: Path) -> None:
        if not isinstance(part, dict):
            self.value(part, path)
            return
        for n, (key, value) in enumerate(part.items()):
            here = path + (key,)
            if key not in _PART:
                if not self.unknown_field(here, n, key):
                    self.value(value, here)
            elif key == "type" and isinstance(value, str):
                continue
            elif key in ("image_url", "input_audio", "file") and isinstance(value, dict):
                for k, v in value.items():
                    inner = here + (k,)
                    if k in ("detail", "format") and isinstance(v, str):
                        continue
                    if k == "data" and isinstance(v, str):  # input_audio: base64 audio
                        self.add(inner, v, encoding="base64")
                    else:
                        media = unreadable_file(v) if k == "file_data" else None
                        if media is not None:
                            self.unreadable.append((inner, media))
                        self.value(v, inner)
            else:
                self.value(value, here)

    def call(self, call: Any, path: Path) -> None:
        if not isinstance(call, dict):
            self.value(call, path)
            return
        for key, value in call.items():
            here = path + (key,)
            if key == "type" and isinstance(value, str):
                continue
            self.value(value, here)


def unreadable_file(data: Any) -> str | None:
    """The media type of a `file.file_data` the guard cannot read, or None when it reads it
    (plain text, or a base64 payload that decodes to text). A PDF or an office document
    holds text the guard does not extract: the caller keeps such a file to in-house targets
    (`guard/offload.py`), as it does token ids."""
    if not isinstance(data, str):
        return None
    header, payload = "", data
    if data.startswith("data:") and "," in data:
        header, payload = data.split(",", 1)
    if not base64_only(payload) or decoded_text(payload) is not None:
        return None
    return header[5:].split(";", 1)[0].lower() or "a file of unknown type"


def _payload_size(segment: Segment) -> int:
    """A base64 payload of a binary media type (an image, audio) costs its header: it is
    decoded only to check it is not text (`normalize.payload_views`); anything else costs
    its length."""
    text = segment.text
    comma = text.find(",") if segment.encoding == "data_url" else -1
    binary = segment.encoding == "base64" or text[5:comma].lower().startswith(_BINARY_MEDIA)
    if comma < 0 and segment.encoding == "data_url":
        return len(text)
    if binary and base64_only(text[comma + 1:]):
        return comma + 1
    return len(text)


def _without(body: dict[str, Any], drops: list[Path]) -> dict[str, Any]:
    """A copy of `body` without the fields at `drops`; only the containers on the way are
    copied."""
    out = dict(body)
    for path in drops:
        holder: Any = out
        for step in path[:-1]:
            child = holder[step]
            copy = dict(child) if isinstance(child, dict) else list(child)
            holder[step] = copy
            holder = copy
        holder.pop(path[-1], None)
    return out


def value_at(body: Any, path: Path) -> Any:
    """The value at `path` (a `Key` step gives the key's name)."""
    node = body
    for step in path:
        if isinstance(step, Key):
            return list(node)[step.n]
        node = node[step]
    return node


def redactable(path: Path, text: str) -> bool:
    """Whether a placeholder may replace part of `text`, the string at `path`: not in a
    field name, a URL, file or audio data, a `data:` URL, a message's `name` or a function
    name (vendors validate those: `^[a-zA-Z0-9_-]+$`)."""
    if not path or isinstance(path[-1], Key) or text.startswith("data:"):
        return False
    last = path[-1]
    if last in ("url", "file_data", "data"):
        return False
    if last == "name":
        before = path[-2] if len(path) > 1 else None
        return not (before in ("function", "function_call", "custom") or path[0] == "functions"
                    or (len(path) == 3 and path[0] == "messages"))
    return True


def describe(path: Path) -> str:
    """`messages[1].content[0].text`, `tools[0].function.description`; names the gateway
    does not know (they may be data) are shown as `<field>`."""
    out = ""
    for step in path:
        if isinstance(step, Key):
            out += ".<field name>"
        elif isinstance(step, int):
            out += f"[{step}]"
        elif step in _KNOWN_NAMES:
            out += ("." if out else "") + step
        else:
            out += ("." if out else "") + "<field>"
    return out


_KNOWN_NAMES = (_CHAT_TOP | _EMBEDDINGS_TOP | _MESSAGE | _PART
                | {"id", "function", "arguments", "description", "parameters", "url",
                   "detail", "data", "format", "file_data", "file_id", "filename",
                   "json_schema", "schema", "properties", "content", "type", "items",
                   "enum", "required", "additionalProperties", "strict", "title", "default",
                   "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "examples",
                   "minimum", "maximum", "minLength", "maxLength", "pattern", "const"})

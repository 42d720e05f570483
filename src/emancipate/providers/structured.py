"""Structured output for vendors without a JSON mode: the answer asked for as a forced tool.

`response_format` `json_schema` / `json_object` has no field in Anthropic's Messages API nor
in Bedrock's Converse API, but both force a tool call and shape the tool's input after its
JSON schema. So the adapter sends one tool (`structured_tool` names it) whose schema is the
client's (`{"type": "object"}` for `json_object`), forces it, and reads that tool's input
back as the answer's `content` (JSON text) with `finish_reason: stop`.

Pure functions used by `providers/anthropic.py` and `providers/bedrock_translate.py`; each
vendor wraps `structured_spec` in its own tool shape. Combined with the client's own `tools`
the adapters refuse the request (`STRUCTURED_WITH_TOOLS`): forcing one tool would silence
the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ChatBody = dict[str, Any]

STRUCTURED_WITH_TOOLS = ("gives structured output as a forced tool call, which cannot be "
                         "combined with the request's tools")
_DESCRIPTION = "Give the answer as this tool's input: a JSON object that follows the schema."


@dataclass(frozen=True, slots=True)
class StructuredSpec:
    """The forced tool that carries a structured answer."""

    name: str
    description: str
    schema: dict[str, Any]


def structured_tool(body: ChatBody) -> str | None:
    """The name of the tool that carries a structured answer, or None when the client asked
    for text. Vendor tool names and OpenAI schema names share `[a-zA-Z0-9_-]{1,64}`; the name
    is still cleaned, as our protocol does not check it."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") not in ("json_object", "json_schema"):
        return None
    name = str((fmt.get("json_schema") or {}).get("name") or "")
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "json_answer"


def structured_spec(body: ChatBody) -> StructuredSpec | None:
    """The forced tool for `body`'s `response_format`, or None when it asks for text."""
    name = structured_tool(body)
    if name is None:
        return None
    fmt = body["response_format"].get("json_schema") or {}
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        schema = {"type": "object"}
    return StructuredSpec(name, str(fmt.get("description") or _DESCRIPTION), schema)

"""How deep a request body may nest: checked once, at the edge, before anything recurses.

Every later stage walks the body (validation, the guard, redaction, the vendor translations)
and the upstream call serialises it with orjson, which refuses more than 255 levels: a body
nested 300 deep answered 500. The walk here is iterative, so the check itself cannot overflow.
"""

from __future__ import annotations

from typing import Any

from emancipate.protocol import OpenAIError


def check_depth(body: Any, limit: int) -> None:
    """400 `json_too_deep` when `body` nests objects and arrays more than `limit` levels
    (the body itself is level 1); `param` names the top-level field that does."""
    stack: list[tuple[Any, int, str | None]] = [(body, 1, None)]
    while stack:
        value, depth, field = stack.pop()
        if depth > limit:
            raise too_deep(limit, field)
        if isinstance(value, dict):
            for key, child in value.items():
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1, field if depth > 1 else str(key)))
        else:
            stack.extend((child, depth + 1, field) for child in value
                         if isinstance(child, dict | list))


def too_deep(limit: int, field: str | None = None) -> OpenAIError:
    where = f" (in '{field}')" if field else ""
    return OpenAIError(
        400, f"The request body nests JSON objects and arrays deeper than this gateway accepts "
        f"({limit} levels){where}. Flatten the structure, or ask the operator to raise "
        "server.max_json_depth.", param=field, code="json_too_deep")

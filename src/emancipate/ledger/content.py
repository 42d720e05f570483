"""What `ledger.log_content` stores: the messages and the answer, with detected values masked.

Masking uses the same guard that protects vendors, so the rule "the ledger never holds a
detected secret" survives the operator turning content logging on.
"""

from __future__ import annotations

from typing import Any

import orjson


def mask(text: str, guard: Any) -> str:
    """`text` with each finding replaced by `[class:detector]`."""
    if guard is None or not text:
        return text
    from emancipate.guard import Unscannable

    try:
        findings = guard.scan(text)
    except Unscannable:  # what the guard could not read is not kept either
        return f"[unscannable:{len(text)} characters]"
    if not findings:
        return text
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < last:
            continue
        out.append(text[last:f.start])
        out.append(f"[{f.cls}:{f.detector}]")
        last = f.end
    out.append(text[last:])
    return "".join(out)


def masked(value: Any, guard: Any) -> Any:
    """`value` (JSON: strings, lists, dicts) with every string masked as by `mask`."""
    if isinstance(value, str):
        return mask(value, guard)
    if isinstance(value, list):
        return [masked(v, guard) for v in value]
    if isinstance(value, dict):
        return {k: masked(v, guard) for k, v in value.items()}
    return value


def content_row(messages: Any, answer: str | None, guard: Any) -> dict[str, Any]:
    """The `contents` row of one request (request_id is added by the ledger)."""
    return {
        "messages": orjson.dumps(masked(messages, guard)).decode(),
        "answer": None if answer is None else mask(answer, guard),
    }

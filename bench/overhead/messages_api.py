"""The `/v1/messages` streaming row (`bench/run.py --messages`, `bench/api_stream.py`): its
request body and the check that a streamed Message carries the upstream's answer word for
word and ends with `message_stop`.

The gateway translates the Messages request to the same chat request the chat rows send
(`overhead.upstream.request_body`), so the rows differ only by the Messages wire: the
request's translation and the named events (`api/messages.py`).
"""

from __future__ import annotations

import json
from typing import Any

from overhead.client import Reply
from overhead.upstream import CONTENT, MODEL, request_body

MESSAGES_PATH = "/v1/messages"
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}


def messages_body(model: str = MODEL) -> bytes:
    """The chat rows' request, as a streamed Anthropic Messages request."""
    chat = json.loads(request_body(model=model))
    body: dict[str, Any] = {
        "model": model, "max_tokens": chat["max_tokens"], "temperature": chat["temperature"],
        "system": chat["messages"][0]["content"],
        "messages": [{"role": "user", "content": chat["messages"][1]["content"]}],
        "stream": True,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def check_messages_stream(reply: Reply, stream: bool = True) -> str | None:
    """None when the named events end with message_stop and hold the upstream's answer."""
    if reply.status != 200:
        return f"status {reply.status}: {reply.body[:300]!r}"
    names, text = [], []
    for raw in reply.body.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in raw.split("\n") if ": " in line)
        names.append(fields.get("event"))
        data = json.loads(fields.get("data", "{}"))
        if data.get("type") == "content_block_delta":
            text.append(data["delta"].get("text", ""))
    if names[-1:] != ["message_stop"]:
        return f"stream without message_stop ({names[-3:]})"
    return None if "".join(text) == CONTENT else f"stream content differs: {text[:3]!r}"

"""The `/v1/responses` streaming row (`bench/run.py --responses`): its request body and the
check that a streamed Response carries the upstream's answer word for word.

The gateway translates the Responses request to the same chat request the chat rows send
(`overhead.upstream.request_body`), so the two streaming rows differ only by the Responses
wire: the request's translation and the typed events (`api/responses_stream.py`), and the
stored response (`store`, one database write before `response.completed`).
"""

from __future__ import annotations

import json
from typing import Any

from overhead.client import Reply
from overhead.upstream import CONTENT, MODEL

RESPONSES_PATH = "/v1/responses"


def responses_body(model: str = MODEL, store: bool = True) -> bytes:
    """The chat rows' request, as a streamed Responses request."""
    body: dict[str, Any] = {
        "model": model,
        "instructions": "You are a concise assistant for the finance team.",
        "input": (
            "Summarise the attached quarterly report in one paragraph for the weekly "
            "newsletter: revenue, costs, the board's decisions and the outlook. Keep it "
            "under 120 words and do not use bullet points."
        ),
        "temperature": 0.2,
        "max_output_tokens": 256,
        "stream": True,
        "store": store,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def check_responses_stream(reply: Reply, stream: bool = True) -> str | None:
    """None when the stream ends with response.completed holding the upstream's answer."""
    if reply.status != 200:
        return f"status {reply.status}: {reply.body[:300]!r}"
    events = [json.loads(line[5:]) for line in reply.body.split(b"\n")
              if line.startswith(b"data:")]
    if not events or events[-1].get("type") != "response.completed":
        return f"stream without response.completed ({len(events)} events)"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]["output"][0]["content"][0]["text"]
    if deltas != CONTENT or final != CONTENT:
        return f"stream content differs: {deltas[:120]!r}"
    return None

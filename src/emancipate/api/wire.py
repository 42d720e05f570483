"""Wires: how one API's format maps onto the one chat pipeline.

Every API the gateway speaks (chat completions, embeddings, Responses, Anthropic Messages,
legacy completions) is a `Wire`: it turns its request into the internal chat request (the
OpenAI chat body, which `Gateway.chat` validates, guards, routes and executes), and turns
the answer, the stream of chat chunks and errors back into its own format. Nothing else
differs between APIs, so the guard, policy, routing, failover, keys, budgets, ledger and
shadow apply to each one identically.

    wire.request(body) ─▶ Gateway.chat ─▶ wire.answer(body) | wire.stream(events)
                                         ╰─▶ wire.error(err) on any OpenAIError
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.types import Scope

from emancipate.context import RequestContext
from emancipate.protocol import OpenAIError

Events = AsyncGenerator[dict[str, Any], None]  # closed (`aclose`) when the client leaves


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Wire:
    """The OpenAI chat completions wire; other APIs override what differs.

    `endpoint` names the API in the ledger, metrics and the report.
    """

    endpoint = "chat.completions"
    streams = True  # False: `stream: true` is refused by the request model itself

    def credentials(self, scope: Scope) -> str | None:
        """The `Authorization` value the virtual-key check reads."""
        return header(scope, b"authorization")

    def request(self, data: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """The internal chat request for this API's body (raises `OpenAIError`)."""
        return data

    def answer(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """This API's answer for a chat completion."""
        return body

    async def stream(self, events: Events, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        """This API's event stream for a stream of chat chunks; the last chunk is
        `{"error": …}` when the upstream broke after commit."""
        try:
            async for event in events:
                yield b"data: " + orjson.dumps(event) + b"\n\n"
                if "error" in event:
                    return
            yield b"data: [DONE]\n\n"
        finally:
            await events.aclose()

    def error(self, err: OpenAIError) -> tuple[int, dict[str, Any]]:
        """Status and body of an error in this API's shape."""
        return err.status, err.body()


class EmbeddingsWire(Wire):
    endpoint = "embeddings"
    streams = False


CHAT = Wire()
EMBEDDINGS = EmbeddingsWire()


__all__ = ["CHAT", "EMBEDDINGS", "EmbeddingsWire", "Events", "Wire", "header"]

"""What every provider adapter offers the executor, and the one error type it raises.

Adapters speak OpenAI's chat-completions shape on their executor side (dicts, as parsed
from JSON) and their vendor's wire protocol on the other. Vendor differences live only here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import Any

from emancipate.protocol import ChatCompletionRequest, ContentPart

# What `chat_stream` returns: an async generator, not any iterator, because callers that stop
# early `aclose()` it so the upstream connection is released at once.
ChatChunks = AsyncGenerator[dict[str, Any], None]


class ProviderError(Exception):
    """An upstream failure, classified so the executor knows whether to retry or fail over.

    `kind` is one of: connect, timeout, rate_limited, upstream_5xx, upstream_auth,
    bad_response, too_large (an answer over `server.max_upstream_body_bytes`: failed over at
    once, never retried on the same target), stream_cut, client_error, unavailable. Messages
    never contain credentials.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.param = param
        self.code = code

    @property
    def retryable(self) -> bool:
        """The client's own mistakes are never retried nor failed over."""
        return self.kind != "client_error"


class Unsupported(Exception):
    """A request parameter this target cannot honour (the executor skips the target)."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(reason)
        self.param = param
        self.reason = reason


class Provider(ABC):
    """One configured upstream (a vendor account, an in-house server, the embedded model)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        """Raise Unsupported when this target cannot honour a parameter of the request."""

    @abstractmethod
    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """One chat completion, returned as an OpenAI `chat.completion` dict."""

    @abstractmethod
    def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        """OpenAI `chat.completion.chunk` dicts; ends normally only after a complete answer."""

    async def embeddings(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        raise ProviderError("client_error", f"provider {self.name!r} does not serve embeddings",
                            status=400, param="model", code="model_not_supported")

    def serves_embeddings(self, model: str) -> bool:
        return False

    async def start(self) -> None:
        """Warm up (connection pools, model loading) without blocking start-up."""

    @property
    def ready(self) -> bool:
        return True

    def stats(self) -> dict[str, float]:
        """Adapter-specific counters exported as metrics (e.g. the embedded model's queue)."""
        return {}

    async def aclose(self) -> None:
        """Release connections and threads."""


def check_token_limit(request: ChatCompletionRequest, window: int | None, who: str) -> None:
    """Unsupported when the request asks for more completion tokens than the target's context
    window holds (`window` None: unknown, anything goes)."""
    limit = request.token_limit
    if window is None or limit is None or limit < window:
        return
    param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
    raise Unsupported(param, f"{who} has a context window of {window} tokens, prompt "
                      f"included: ask for fewer than {window}")


PartType = str  # a content part's `type`: text, image_url, input_audio, file, refusal
PartCheck = Callable[[ContentPart], str | None]


def check_parts(request: ChatCompletionRequest, who: str, takes: frozenset[PartType],
                why_not: PartCheck | None = None) -> None:
    """Unsupported naming the first content part this target cannot take: a type outside
    `takes`, or one `why_not` gives a reason against (`param` is the part's path, e.g.
    `messages[0].content[1].type`, so the client's 400 says which part to remove)."""
    for i, message in enumerate(request.messages):
        if not isinstance(message.content, list):
            continue
        for j, part in enumerate(message.content):
            where = f"messages[{i}].content[{j}]"
            if part.type not in takes:
                raise Unsupported(f"{where}.type", f"{who} takes no '{part.type}' content "
                                  f"parts (it takes {', '.join(sorted(takes))})")
            reason = why_not(part) if why_not is not None else None
            if reason:
                raise Unsupported(where, f"{who} {reason}")


def check_legacy(request: ChatCompletionRequest, who: str) -> None:
    """Unsupported for what only OpenAI's API (and those that copy it) reads: the legacy
    `functions` / `function_call` parameters and assistant `function_call` messages, and
    `custom` (free-form input) tools and their calls. Translating the legacy form would also
    mean answering in it (`function_call`, `finish_reason: function_call`); the clients that
    still send it all speak `tools` too."""
    if request.functions is not None or request.function_call is not None:
        param = "functions" if request.functions is not None else "function_call"
        raise Unsupported(param, f"{who} takes `tools` and `tool_choice`, not the legacy "
                          f"`{param}`: send each function as {{\"type\": \"function\", "
                          "\"function\": …}} in `tools`")
    for i, message in enumerate(request.messages):
        if message.function_call is not None:
            raise Unsupported(f"messages[{i}].function_call", f"{who} takes assistant "
                              "`tool_calls`, not the legacy `function_call`")
        for j, call in enumerate(message.tool_calls or ()):
            if call.type == "custom":
                raise Unsupported(f"messages[{i}].tool_calls[{j}]",
                                  f"{who} takes function tool calls only, not custom ones")
    for k, tool in enumerate(request.tools or ()):
        if tool.type == "custom":
            raise Unsupported(f"tools[{k}]", f"{who} takes function tools only, not custom "
                              "(free-form input) tools")


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(media type, base64 payload) of a base64 `data:` URL, or None for anything else."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    media, data = url[5:].split(";base64,", 1)
    return media.lower(), data


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds form; HTTP-date form is treated as unknown)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify_status(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "upstream_auth"
    if status >= 500 or status in (408, 409):
        return "upstream_5xx"
    return "client_error"


def text_of(content: Any) -> str:
    """The text of an OpenAI message content: the string, or its text parts joined (what
    vendors without content parts, or with a separate system field, receive)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content
                   if p.get("type") in ("text", "refusal"))

"""The OpenAI wire protocol, in one place: request models, response builders, errors.

Requests are validated with pydantic so a wrong type gets an error naming the parameter;
known fields are typed, unknown ones pass through to providers that understand them.
Responses are plain dicts serialised by orjson: the hot path allocates no models for them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --- errors ---------------------------------------------------------------------------------


class OpenAIError(Exception):
    """An error a client sees, in OpenAI's shape, with the HTTP status to send it with."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def error_type_for(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "invalid_request_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


# --- requests -------------------------------------------------------------------------------


class _Open(BaseModel):
    # Strict: "yes" is not a boolean and "5" is not an integer, as on OpenAI's own API.
    model_config = ConfigDict(extra="allow", strict=True)


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ImageURL(_Open):
    url: str


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Open):
    data: str
    format: str


class AudioPart(_Open):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Open):
    """A file by `file_id` (uploaded to the vendor) or inline: `file_data`, a `data:` URL."""

    file_id: str | None = None
    file_data: str | None = None
    filename: str | None = None


class FilePart(_Open):
    type: Literal["file"]
    file: FileRef


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


# Parts beyond text and images pass to the targets that take them; an adapter that cannot
# refuses them in `check` with the part's path (`check_parts` in providers/base.py).
ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart,
                        Field(discriminator="type")]


class FunctionCall(_Open):
    name: str
    arguments: str


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class CustomCall(_Open):
    name: str
    input: str


class CustomToolCall(_Open):
    """A call of a `custom` (free-form input) tool."""

    id: str
    type: Literal["custom"]
    custom: CustomCall


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall | CustomToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None  # legacy: what `tool_calls` replaced

    @model_validator(mode="after")
    def _content_required(self) -> Message:
        if self.content is None and self.role not in ("assistant",):
            raise ValueError(f"a {self.role} message needs `content`")
        if (self.role == "assistant" and self.content is None and not self.tool_calls
                and self.function_call is None):
            raise ValueError("an assistant message needs `content`, `tool_calls` or "
                             "`function_call`")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs `tool_call_id`")
        if self.role == "function" and not self.name:
            raise ValueError("a function message needs the `name` of the function it answers")
        return self

    def text(self) -> str:
        """All the text of this message, tool-call arguments included (for the guard)."""
        parts: list[str] = []
        if isinstance(self.content, str):
            parts.append(self.content)
        elif self.content:
            parts.extend(p.text for p in self.content if isinstance(p, TextPart))
        for call in self.tool_calls or ():
            parts.append(call.function.arguments if isinstance(call, ToolCall)
                         else call.custom.input)
        if self.function_call is not None:
            parts.append(self.function_call.arguments)
        return "\n".join(parts)


class StreamOptions(_Open):
    include_usage: bool = False


class FunctionDef(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    type: Literal["function"]
    function: FunctionDef


class CustomDef(_Open):
    name: str
    description: str | None = None
    format: dict[str, Any] | None = None  # free text, or a grammar (lark, regex)


class CustomTool(_Open):
    """A tool whose input is free text (OpenAI's `custom` tools), not JSON arguments."""

    type: Literal["custom"]
    custom: CustomDef


AnyTool = Annotated[Tool | CustomTool, Field(discriminator="type")]


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(_Open):
    model: str = Field(..., min_length=1)
    messages: list[Message] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=128)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: ResponseFormat | None = None
    tools: list[AnyTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    # Legacy function calling (what `tools` / `tool_choice` replaced); passed through to
    # OpenAI-compatible targets and refused by the others (`providers.base.check_legacy`).
    functions: list[FunctionDef] | None = None
    function_call: str | dict[str, Any] | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_limit(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def prompt_text(self) -> str:
        return "\n".join(m.text() for m in self.messages)


class EmbeddingRequest(_Open):
    model: str = Field(..., min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    # No embedding model has more (OpenAI's largest: 3072); one request for a million used to
    # cost the gateway 190 MB.
    dimensions: int | None = Field(None, ge=1, le=8192)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if v == "" or v == []:
            raise ValueError("`input` must not be empty")
        return v


def pydantic_error_to_openai(errors: Sequence[Mapping[str, Any]]) -> OpenAIError:
    """Turn the first pydantic error into a message that names the parameter and the fix."""
    err = _relevant(errors)
    loc = _without_union_steps(err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("type")  # a content part of a type this API does not have
    param = _param_path(loc)
    msg = err["msg"]
    if err["type"] in ("missing", "union_tag_not_found"):
        text = f"Missing required parameter: '{param}'."
    elif err["type"] == "too_short" and param == "messages":
        text = "'messages' must contain at least one message."
    elif err["type"] == "literal_error" and loc and loc[-1] == "role":
        text = (
            f"Invalid value for '{param}': {err.get('input')!r}. Supported roles are "
            "'system', 'developer', 'user', 'assistant', 'tool' and 'function'."
        )
    else:
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {orjson.dumps(got).decode()[:80]})"
        text = f"Invalid value for '{param}': {msg}{shown}."
    return OpenAIError(400, text, param=param, code="invalid_value")


def _relevant(errors: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The error to report: for content given as a list, the list's own error rather than
    "not a string" from the string branch of `str | list[part]`."""
    first = errors[0]
    if (len(errors) > 1 and first["type"] == "string_type" and first["loc"][-1:] == ("str",)
            and isinstance(first.get("input"), list)):
        return errors[1]
    return first


_UNION_TAGS = {"str", "list[int]", "list[list[int]]", "list[str]", "dict[str,any]", "int",
               "float", "bool", "ToolCall", "CustomToolCall"}


def _without_union_steps(loc: tuple[Any, ...]) -> list[Any]:
    """`loc` without pydantic's union branch names and the tag after an item's index in a
    tagged union (`content.<union>.1.input_audio.input_audio.format` →
    `content.1.input_audio.format`)."""
    out: list[Any] = []
    for i, step in enumerate(loc):
        if isinstance(step, str) and (step in _UNION_TAGS or step.startswith("list[tagged")):
            continue
        if i >= 2 and _tagged(loc[i - 2]) and isinstance(loc[i - 1], int):
            continue  # the discriminator's value
        out.append(step)
    return out


def _tagged(step: Any) -> bool:
    """A list of tagged-union items: content parts (named by pydantic) or `tools`."""
    return isinstance(step, str) and (step.startswith("list[tagged-union[") or step == "tools")


def _param_path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


# --- responses ------------------------------------------------------------------------------


def now() -> int:
    return int(time.time())


def chat_completion(
    *,
    id: str,
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, int] | None,
    created: int | None = None,
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created or now(),
        "model": model,
        "choices": choices,
        "usage": usage,
    }
    if system_fingerprint is not None:
        body["system_fingerprint"] = system_fingerprint
    return body


def chat_chunk(
    *,
    id: str,
    model: str,
    created: int,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    index: int = 0,
    usage: dict[str, int] | None = None,
    empty_choices: bool = False,
) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    if not empty_choices:
        choices = [
            {"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
        ]
    chunk: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"

"""Amazon Bedrock Runtime's Converse wire, as bedrock-runtime.{region}.amazonaws.com speaks it.

Built from the public API reference: `POST /model/{modelId}/converse` (JSON) and
`/converse-stream` (`application/vnd.amazon.eventstream`: `messageStart`,
`contentBlockStart` for a tool call, `contentBlockDelta`, `contentBlockStop`, `messageStop`,
`metadata`, each payload padded with a `p` field as the service does; faults mid-stream are
`exception` messages), errors as `x-amzn-ErrorType` plus `{"message": …}`.

Every request must carry a Signature V4 `Authorization` header: the simulator recomputes the
signature from the request as received (its own implementation, `sigv4_signature`, checked
against AWS's published test vectors in `tests/test_bedrock.py`) and refuses as AWS does: an
unknown access key id is `UnrecognizedClientException`, a wrong secret (a signature that does
not match) `InvalidSignatureException`, a date more than 5 minutes off, or a scope for another
region or service, `InvalidSignatureException` too; all 403.

The simulated model is deterministic: "{name} says: {last user text}"; it calls the first
allowed tool (input `{"echo": text}`) when tools are offered and the last turn holds no tool
result; when `toolChoice` forces a tool, the input is a value shaped after that tool's
`inputSchema.json` (`schema_value`), as a model made to answer through a tool (structured
output) does. `InvokeModel` (`/model/{modelId}/invoke`) answers the embedding models Titan Text
Embeddings v2 and Cohere Embed v3 with `embedding_vector` (deterministic). The event-stream
encoder here is written apart from the gateway's decoder
(`providers/eventstream.py`) on purpose, so that each checks the other.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import struct
import time
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from emancipate.testing.common import (
    Answer,
    ReplyFn,
    count_tokens,
    generate,
    new_id,
    schema_value,
    stops_of,
)
from emancipate.testing.openai_wire import embedding_vector

EVENT_STREAM = "application/vnd.amazon.eventstream"
_CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_ERRORS = {
    400: ("ValidationException", "Malformed input request, please reformat your input and "
          "try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified "
          "model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "The request took too long to process."),
    424: ("ModelErrorException", "The model encountered an error while processing the input."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_STOP = {"end": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
_TOP_KEYS = {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
             "additionalModelRequestFields", "additionalModelResponseFieldPaths",
             "promptVariables", "requestMetadata", "performanceConfig"}
_BLOCK_KEYS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent",
               "reasoningContent", "cachePoint"}
_MAX_TOKENS = 8192


# --- the event-stream framing ----------------------------------------------------------------


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message with string headers (type 7)."""
    raw_headers = b""
    for name, value in headers.items():
        key, data = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(key)) + key + b"\x07" + struct.pack(
            ">H", len(data)) + data
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    # The service pads payloads with a `p` field so that lengths leak nothing.
    body = json.dumps({**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"[:len(event_type)]})
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, body.encode())


def exception_frame(exception_type: str, message: str) -> bytes:
    return encode_message({":exception-type": exception_type,
                           ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps({"message": message}).encode())


# --- Signature V4 ----------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(secret: str, *, method: str, raw_path: str, query: Mapping[str, str],
                    headers: Mapping[str, str], signed: list[str], payload: bytes,
                    amz_date: str, region: str, service: str) -> str:
    """The hex signature AWS computes for a request (non-S3 rules: the path, as sent, is
    URI-encoded once more; header values trimmed, inner spaces folded)."""
    canonical = "\n".join([
        method, quote(raw_path or "/", safe="/~"),
        "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items())),
        "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed),
        ";".join(signed), hashlib.sha256(payload).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> dict[str, str] | None:
    """`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` → its three fields."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return None
    fields = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    return fields if {"Credential", "SignedHeaders", "Signature"} <= set(fields) else None


# --- the service -----------------------------------------------------------------------------


class BedrockWire:
    """One AWS account's Bedrock Runtime in one region, for one access key."""

    raw_paths = True  # SimulatedVendor hands `handle` the path as sent: it is signed

    def __init__(self, name: str = "bedrock", *, access_key_id: str, secret_access_key: str,
                 region: str = "us-east-1", reply: ReplyFn | None = None,
                 chunks: int | None = None) -> None:
        self.name = name
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        self.reply = reply
        self.chunks = chunks

    def error(self, status: int, message: str | None = None, *, retry_after: float | None = None,
              error_type: str | None = None) -> Answer:
        kind, default = _ERRORS.get(status, ("InternalServerException", f"HTTP {status}"))
        return Answer(status, body={"message": message or default},
                      headers={"x-amzn-ErrorType": (error_type or kind) + _CORAL})

    def garbage_body(self) -> bytes:
        return b'{"output":{"message":{"role":"assistant","content":[{"text":"this stops sh'

    def garbage_event(self) -> bytes:
        frame = bytearray(event_frame("contentBlockDelta", {
            "contentBlockIndex": 0, "delta": {"text": "oops"}}))
        frame[-1] ^= 0xFF  # a message checksum that does not match
        return bytes(frame)

    def error_event(self, status: int) -> bytes:
        kind, message = _ERRORS.get(status, _ERRORS[500])
        if status == 500:
            kind = "ModelStreamErrorException"
        return exception_frame(kind[0].lower() + kind[1:], message)

    def request_id_header(self) -> dict[str, str]:
        return {"x-amzn-RequestId": new_id("")}

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        denied = self.denied(method, path, headers, raw, query or {})
        if denied is not None:
            return denied
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[0] != "model" or parts[2] not in (
                "converse", "converse-stream", "invoke"):
            return self.error(404, "The requested operation is not recognized by the service.",
                              error_type="UnknownOperationException")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "Malformed input request: request body is not JSON.")
        if parts[2] == "invoke":
            return self._invoke(body, unquote(parts[1]))
        problem = _invalid(body)
        if problem:
            return self.error(400, problem)
        return self._converse(body, unquote(parts[1]), parts[2] == "converse-stream")

    def denied(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str]) -> Answer | None:
        """The 403 AWS answers to a request that is not signed by our key, or None."""
        fields = parse_authorization(headers.get("authorization", ""))
        if fields is None:
            return self.error(403, "Missing Authentication Token",
                              error_type="MissingAuthenticationTokenException")
        key_id, _, scope = fields["Credential"].partition("/")
        if key_id != self.access_key_id:
            return self.error(403, "The security token included in the request is invalid.",
                              error_type="UnrecognizedClientException")
        amz_date = headers.get("x-amz-date", "")
        problem = self._scope_problem(scope, amz_date)
        signed = fields["SignedHeaders"].split(";")
        if problem is None and not {"host", "x-amz-date"} <= set(signed):
            problem = "'Host' and 'X-Amz-Date' must be signed."
        if problem is None:
            expected = sigv4_signature(
                self.secret_access_key, method=method, raw_path=path, query=query,
                headers=headers, signed=signed, payload=raw, amz_date=amz_date,
                region=self.region, service="bedrock")
            if not hmac.compare_digest(expected, fields["Signature"]):
                problem = ("The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.")
        if problem is None:
            return None
        return self.error(403, problem, error_type="InvalidSignatureException")

    def _scope_problem(self, scope: str, amz_date: str) -> str | None:
        try:
            when = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return "X-Amz-Date is missing or malformed."
        if abs(time.time() - when) > 300:
            return f"Signature expired: {amz_date} is now earlier or later than 5 minutes."
        expected = f"{amz_date[:8]}/{self.region}/bedrock/aws4_request"
        if scope != expected:
            return f"Credential should be scoped to a valid region and service: {expected!r}."
        return None

    # --- the model ----------------------------------------------------------------------------

    def _converse(self, body: dict[str, Any], model: str, stream: bool) -> Answer:
        text = _last_user_text(body["messages"])
        config = body.get("inferenceConfig") or {}
        tool = _tool_to_call(body)
        if tool is not None:
            block: dict[str, Any] = {"toolUse": {"toolUseId": "tooluse_" + new_id("")[:22],
                                                 "name": tool, "input": _tool_input(body, text)}}
            pieces, stop = [json.dumps(block["toolUse"]["input"])], "tool_use"
            output = count_tokens(pieces[0])
        else:
            reply = self.reply(body) if self.reply else f"{self.name} says: {text}"
            gen = generate(reply, max_tokens=config.get("maxTokens"),
                           stops=stops_of(config.get("stopSequences")), chunks=self.chunks)
            block, pieces, stop, output = {"text": gen.text}, gen.pieces, _STOP[gen.finish], \
                gen.tokens
        prompt = count_tokens(_all_text(body))
        usage = {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output}
        if not stream:
            return Answer(200, body={
                "output": {"message": {"role": "assistant", "content": [block]}},
                "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 42}},
                pieces=max(1, len(pieces)))
        frames = _stream_frames(block, pieces, stop, usage)
        return Answer(200, events=frames, content_type=EVENT_STREAM, pieces=len(frames))


    # --- InvokeModel: the embedding models ------------------------------------------------------

    def _invoke(self, body: dict[str, Any], model: str) -> Answer:
        """Titan Text Embeddings v2 (`inputText`, `dimensions`, `normalize`) and Cohere Embed
        v3 (`texts`, `input_type`), each checked as the service checks it; the input token
        count in `X-Amzn-Bedrock-Input-Token-Count`, as InvokeModel sends it."""
        if "amazon.titan-embed-text-v2" in model:
            problem = _titan_problem(body)
            if problem:
                return self.error(400, problem)
            dims = body.get("dimensions", 1024)
            vector = embedding_vector(body["inputText"], dims)
            if body.get("normalize") is False:  # the raw vector is longer than 1
                vector = [v * 3.0 for v in vector]
            tokens = count_tokens(body["inputText"])
            return Answer(200, body={"embedding": vector, "inputTextTokenCount": tokens,
                                     "embeddingsByType": {"float": vector}},
                          headers=_token_headers(tokens))
        if "cohere.embed-english-v3" in model or "cohere.embed-multilingual-v3" in model:
            problem = _cohere_problem(body)
            if problem:
                return self.error(400, problem)
            texts = body["texts"]
            tokens = sum(count_tokens(t) for t in texts)
            return Answer(200, body={"id": new_id(""), "response_type": "embeddings_floats",
                                     "texts": texts,
                                     "embeddings": [embedding_vector(t, 1024) for t in texts]},
                          headers=_token_headers(tokens))
        return self.error(400, "The provided model identifier is invalid.")


def _token_headers(tokens: int) -> dict[str, str]:
    return {"X-Amzn-Bedrock-Input-Token-Count": str(tokens),
            "X-Amzn-Bedrock-Output-Token-Count": "0", "X-Amzn-Bedrock-Invocation-Latency": "21"}


def _titan_problem(body: dict[str, Any]) -> str | None:
    unknown = set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    if not isinstance(body.get("inputText"), str) or not body["inputText"]:
        return "Malformed input request: #: required key [inputText] not found"
    if body.get("dimensions", 1024) not in (256, 512, 1024):
        return "Malformed input request: #/dimensions: 1024, 512 or 256 expected"
    return None


def _cohere_problem(body: dict[str, Any]) -> str | None:
    unknown = set(body) - {"texts", "input_type", "truncate", "embedding_types", "images"}
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    texts = body.get("texts")
    if not isinstance(texts, list) or not 1 <= len(texts) <= 96 or not all(
            isinstance(t, str) for t in texts):
        return "Malformed input request: #/texts: expected from 1 to 96 strings"
    if body.get("input_type") not in ("search_document", "search_query", "classification",
                                      "clustering"):
        return "Malformed input request: #/input_type: search_document, search_query, " \
               "classification or clustering expected"
    return None


def _stream_frames(block: dict[str, Any], pieces: list[str], stop: str,
                   usage: dict[str, int]) -> list[bytes]:
    frames = [event_frame("messageStart", {"role": "assistant"})]
    if "toolUse" in block:
        use = block["toolUse"]
        frames.append(event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": {
            "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
        half = len(pieces[0]) // 2  # the input JSON arrives in pieces
        pieces = [pieces[0][:half], pieces[0][half:]]
        frames += [event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
            "toolUse": {"input": piece}}}) for piece in pieces]
    else:
        frames += [event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
            "text": piece}}) for piece in pieces]
    frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(event_frame("messageStop", {"stopReason": stop}))
    frames.append(event_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}))
    return frames


def _invalid(body: dict[str, Any]) -> str | None:
    """What the service would refuse with a ValidationException, or None."""
    unknown = set(body) - _TOP_KEYS
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message. Try again with a conversation " \
               "that starts with a user message."
    uses_tools = False
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            return ("A conversation must alternate between user and assistant roles. Make sure "
                    "the conversation alternates between user and assistant roles and try again.")
        problem = _content_problem(message.get("content"), i)
        if problem:
            return problem
        uses_tools |= any("toolUse" in b or "toolResult" in b for b in message["content"])
    if uses_tools and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content " \
               "blocks."
    return _config_problem(body.get("inferenceConfig") or {})


def _content_problem(content: Any, i: int) -> str | None:
    if not isinstance(content, list) or not content:
        return f"The content field in the Message object at messages.{i} is empty. Add a " \
               "ContentBlock object to the content field and try again."
    for j, block in enumerate(content):
        if not isinstance(block, dict) or len(block) != 1 or not set(block) <= _BLOCK_KEYS:
            return f"Malformed input request: messages.{i}.content.{j} is not a ContentBlock"
        if "text" in block and not str(block["text"]).strip():
            return (f"The text field in the ContentBlock object at messages.{i}.content.{j} is "
                    "blank. Add text to the text field, and try again.")
        if "image" in block:
            image = block["image"]
            if image.get("format") not in ("png", "jpeg", "gif", "webp"):
                return f"messages.{i}.content.{j}.image.format: unsupported image format"
            try:
                base64.b64decode(image["source"]["bytes"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                return f"messages.{i}.content.{j}.image.source.bytes: invalid base64"
    return None


def _config_problem(config: dict[str, Any]) -> str | None:
    unknown = set(config) - {"maxTokens", "temperature", "topP", "stopSequences"}
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    limit = config.get("maxTokens")
    if isinstance(limit, int) and limit > _MAX_TOKENS:
        return (f"The maximum tokens you requested exceeds the model limit of {_MAX_TOKENS}. "
                f"Try again with a maximum tokens value that is lower than {_MAX_TOKENS}.")
    if isinstance(limit, int) and limit < 1:
        return "inferenceConfig.maxTokens: must be greater than or equal to 1"
    temperature = config.get("temperature")
    if isinstance(temperature, int | float) and not 0 <= temperature <= 1:
        return "inferenceConfig.temperature: must be less than or equal to 1"
    return None


def _texts(content: list[dict[str, Any]]) -> list[str]:
    return [str(b["text"]) for b in content if isinstance(b, dict) and "text" in b]


def _all_text(body: dict[str, Any]) -> str:
    out = _texts(body.get("system") or [])
    for message in body["messages"]:
        out += _texts(message["content"])
        for block in message["content"]:
            if "toolResult" in block:
                out += [json.dumps(c) for c in block["toolResult"].get("content") or ()]
    return " ".join(out)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user" and _texts(message["content"]):
            return "".join(_texts(message["content"]))
    return ""


def _tool_input(body: dict[str, Any], text: str) -> Any:
    """A forced tool gets an input that follows its schema; a chosen one `{"echo": text}`."""
    config = body["toolConfig"]
    forced = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
    for tool in config["tools"]:
        spec = tool.get("toolSpec") or {}
        if forced is not None and spec.get("name") == forced:
            return schema_value((spec.get("inputSchema") or {}).get("json") or {}, text)
    return {"echo": text}


def _tool_to_call(body: dict[str, Any]) -> str | None:
    config = body.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in config.get("tools") or () if "toolSpec" in t]
    if not specs:
        return None
    if any("toolResult" in b for b in body["messages"][-1]["content"]):
        return None  # the tool answered: now the model answers in text
    choice = config.get("toolChoice") or {}
    return str((choice.get("tool") or {}).get("name") or specs[0]["name"])

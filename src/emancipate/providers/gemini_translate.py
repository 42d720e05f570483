"""OpenAI chat completions ⇄ Google's `generateContent` wire (Gemini API and Vertex AI).

Pure functions and one stream-state class, no I/O: the adapters in `providers/gemini.py`
post what `generate_request` builds and hand what comes back to `completion_from` or to a
`GeminiStream`. Everything here is tested directly (`tests/test_gemini.py`).

Mapping, request side:
- `system` / `developer` messages → `systemInstruction`; `user` → role `user`; `assistant`
  → role `model` (`tool_calls` → `functionCall` parts); `tool` → a `functionResponse` part in
  a `user` turn, named after the call it answers. Consecutive turns of one role are merged (the
  answers to parallel calls must share one turn).
- images: `data:` URLs → `inlineData`, other URLs → `fileData`. `input_audio` → `inlineData`
  (`audio/<format>`); `file` parts with `file_data` (a base64 `data:` URL: PDF, text, audio,
  video) → `inlineData`; a `file_id` is refused (`file_refusal`). `refusal` parts → text.
- `max_tokens`/`max_completion_tokens` → `maxOutputTokens`, `stop` → `stopSequences`, `n` →
  `candidateCount`, `temperature`, `top_p`, `seed`, penalties → their `generationConfig` names.
- `response_format`: `json_object` → `responseMimeType: application/json`; `json_schema` →
  the same plus `responseSchema`, the schema rewritten to the OpenAPI subset Gemini takes
  (`openapi_schema`).
- `tools` → `functionDeclarations`; `tool_choice` → `toolConfig.functionCallingConfig`.

Answer side: text parts (thought summaries left out) → `content`, `functionCall` parts →
`tool_calls`, `finishReason` → `finish_reason`, `usageMetadata` → `usage`. A prompt the
vendor blocks (`promptFeedback.blockReason`), or an answer stopped for safety before any text,
is a `ProviderError("client_error", code="content_filter")`: a 400 naming the reason, as
Azure OpenAI answers a filtered prompt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from emancipate.protocol import ContentPart, FilePart, chat_chunk, chat_completion, usage
from emancipate.providers.base import ProviderError, data_url_parts, text_of

# Content parts Gemini takes: audio and files as `inlineData` (files inline only).
GEMINI_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})

ChatBody = dict[str, Any]
GeminiBody = dict[str, Any]

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}

# JSON Schema keywords the OpenAPI-subset `Schema` object accepts (others are dropped).
_SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "maxItems",
                "minItems", "properties", "required", "minProperties", "maxProperties",
                "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
                "default", "items", "minimum", "maximum"}
_MAX_SCHEMA_DEPTH = 32


# --- request ---------------------------------------------------------------------------------


def generate_request(body: ChatBody) -> GeminiBody:
    """The `generateContent` body for an OpenAI chat request (the model goes in the URL)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, for functionResponse

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for msg in body["messages"]:
        role = msg["role"]
        if role in ("system", "developer"):
            system.append(text_of(msg.get("content")))
        elif role == "user":
            add("user", _parts(msg.get("content")))
        elif role == "assistant":
            parts = _parts(msg.get("content"))
            for call in msg.get("tool_calls") or ():
                fn = call["function"]
                call_names[call["id"]] = fn["name"]
                parts.append({"functionCall": {"name": fn["name"], "args": _args(fn)}})
            add("model", parts)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id") or ""
            name = call_names.get(call_id) or msg.get("name") or call_id
            add("user", [{"functionResponse": {
                "name": name, "response": _tool_result(msg.get("content"))}}])
    out: GeminiBody = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    if body.get("tools"):
        out["tools"] = [{"functionDeclarations": [_declaration(t) for t in body["tools"]]}]
        calling = _function_calling(body.get("tool_choice"))
        if calling is not None:
            out["toolConfig"] = {"functionCallingConfig": calling}
    return out


def _generation_config(body: ChatBody) -> dict[str, Any]:
    config: dict[str, Any] = {}
    names = {"temperature": "temperature", "top_p": "topP", "seed": "seed",
             "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty"}
    for ours, theirs in names.items():
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    if body.get("n") and body["n"] != 1:
        config["candidateCount"] = body["n"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseSchema"] = openapi_schema(schema)
    return config


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    params = fn.get("parameters")
    if isinstance(params, dict) and params.get("properties"):
        out["parameters"] = openapi_schema(params)
    return out


def _function_calling(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    return None


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema rewritten to the OpenAPI 3.0 subset `responseSchema` and function
    `parameters` take: local `$ref`s inlined, `["x", "null"]` types turned into `nullable`,
    `const` into a one-value `enum`, keywords outside the subset dropped
    (`additionalProperties`, `$schema`, `strict`...)."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    rewritten: dict[str, Any] = _rewrite(schema, defs, 0)
    return rewritten


def _rewrite(node: Any, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(node, dict):
        return node
    if depth > _MAX_SCHEMA_DEPTH:
        raise ProviderError("client_error", f"response_format schema nests deeper than "
                            f"{_MAX_SCHEMA_DEPTH} levels (a recursive $ref?): Gemini's schema "
                            "format cannot express it", status=400, param="response_format",
                            code="invalid_schema")
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.split("/")[-1] in defs:
        return _rewrite(defs[ref.split("/")[-1]], defs, depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if kinds else "null"
            if "null" in value:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: _rewrite(v, defs, depth + 1) for k, v in value.items()}
        elif key == "items":
            out["items"] = _rewrite(value, defs, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [_rewrite(v, defs, depth + 1) for v in value]
        elif key in _SCHEMA_KEYS:
            out[key] = value
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    if not content:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "refusal"):
            parts.append({"text": part.get("text") or part.get("refusal") or ""})
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}",
                                         "data": audio.get("data", "")}})
        elif kind == "file":  # checked: inline (`file_refusal`)
            inline = data_url_parts((part.get("file") or {}).get("file_data") or "")
            if inline is not None:
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("data:") and ";base64," in url:
                mime, data = url[5:].split(";base64,", 1)
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            else:
                parts.append({"fileData": {"fileUri": url, "mimeType": _mime_of(url)}})
    return parts


def file_refusal(part: ContentPart) -> str | None:
    """Why a content part cannot be an `inlineData` part, or None (Gemini reads PDFs, audio,
    video and text inline; an OpenAI file id means nothing to it)."""
    if isinstance(part, FilePart) and data_url_parts(part.file.file_data or "") is None:
        return ("takes files inline only (`file_data` as a base64 data: URL), not by an "
                "OpenAI `file_id`")
    return None


def _mime_of(url: str) -> str:
    ext = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "gif": "image/gif", "webp": "image/webp",
            "heic": "image/heic"}.get(ext, "image/jpeg")


def _args(fn: dict[str, Any]) -> dict[str, Any]:
    try:
        args = orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": fn.get("arguments")}
    return args if isinstance(args, dict) else {"value": args}


def _tool_result(content: Any) -> dict[str, Any]:
    """`functionResponse.response` must be an object: a JSON object result is passed as is,
    anything else is wrapped as `{"content": ...}`."""
    text = text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


# --- answer ----------------------------------------------------------------------------------


def blocked(data: dict[str, Any], who: str) -> ProviderError | None:
    """The content-filter error for a prompt the vendor refused to answer, or None."""
    feedback = data.get("promptFeedback") or {}
    reason = feedback.get("blockReason")
    if not reason:
        return None
    return content_filter(who, f"blocked the prompt ({reason})")


def content_filter(who: str, what: str) -> ProviderError:
    return ProviderError(
        "client_error", f"{who} {what}: its safety filters refused this request; rephrase it "
        "or ask another model", status=400, param="messages", code="content_filter")


def usage_from(meta: dict[str, Any] | None) -> dict[str, int]:
    """`usageMetadata` → OpenAI usage; thinking tokens count as completion tokens, as
    OpenAI counts reasoning tokens."""
    meta = meta or {}
    completion = int(meta.get("candidatesTokenCount", 0)) + int(meta.get("thoughtsTokenCount", 0))
    return usage(int(meta.get("promptTokenCount", 0)), completion)


def completion_from(data: dict[str, Any], model: str, who: str) -> ChatBody:
    """A `chat.completion` for a `GenerateContentResponse` (blocked prompts raise)."""
    err = blocked(data, who)
    if err is not None:
        raise err
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise ProviderError("bad_response", f"{who} answered without candidates")
    choices = []
    for position, cand in enumerate(candidates):
        text, calls = _answer_parts(cand)
        finish = FINISH_REASONS.get(cand.get("finishReason") or "STOP", "stop")
        if finish == "content_filter" and not text and not calls and len(candidates) == 1:
            raise content_filter(who, f"stopped the answer ({cand.get('finishReason')})")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
            message["content"] = text or None
            finish = "tool_calls" if finish == "stop" else finish
        choices.append({"index": cand.get("index", position), "message": message,
                        "logprobs": None, "finish_reason": finish})
    return chat_completion(
        id="chatcmpl-" + str(data.get("responseId") or uuid.uuid4().hex),
        model=str(data.get("modelVersion") or model), choices=choices,
        usage=usage_from(data.get("usageMetadata")))


def _answer_parts(cand: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    parts = (cand.get("content") or {}).get("parts") or []
    text = "".join(str(p.get("text", "")) for p in parts if "text" in p and not p.get("thought"))
    calls = [_tool_call(p["functionCall"]) for p in parts
             if isinstance(p.get("functionCall"), dict)]
    return text, calls


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(call.get("id") or "call_" + uuid.uuid4().hex[:24]), "type": "function",
            "function": {"name": str(call.get("name", "")),
                         "arguments": orjson.dumps(call.get("args") or {}).decode()}}


class GeminiStream:
    """Turns `streamGenerateContent?alt=sse` events into `chat.completion.chunk` dicts.

    Each event is a whole `GenerateContentResponse` carrying the new text; the answer is
    complete once every candidate seen has a `finishReason` (`complete`). The last
    `usageMetadata` seen is the answer's usage (`final`).
    """

    def __init__(self, model: str, who: str) -> None:
        self.model = model
        self.who = who
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.calls: dict[int, int] = {}  # candidate -> tool calls sent so far
        self.text: dict[int, bool] = {}  # candidate -> some text was sent
        self.meta: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return bool(self.finished) and self.finished >= self.started

    def chunks(self, event: dict[str, Any]) -> list[ChatBody]:
        err = blocked(event, self.who)
        if err is not None:
            raise err
        if event.get("usageMetadata"):
            self.meta = event["usageMetadata"]
        if event.get("responseId"):
            self.id = "chatcmpl-" + str(event["responseId"])
        out: list[ChatBody] = []
        for position, cand in enumerate(event.get("candidates") or ()):
            out.extend(self._candidate(int(cand.get("index", position)), cand))
        return out

    def _candidate(self, index: int, cand: dict[str, Any]) -> list[ChatBody]:
        deltas: list[dict[str, Any]] = []
        text, calls = _answer_parts(cand)
        if text:
            self.text[index] = True
            deltas.append({"content": text})
        for call in calls:
            n = self.calls.get(index, 0)
            self.calls[index] = n + 1
            deltas.append({"tool_calls": [{"index": n, **call}]})
        reason = cand.get("finishReason")
        finish = FINISH_REASONS.get(reason, "stop") if reason else None
        if finish == "content_filter" and not self.text.get(index) and not self.calls.get(index):
            raise content_filter(self.who, f"stopped the answer ({reason})")
        if finish == "stop" and self.calls.get(index):
            finish = "tool_calls"
        if index not in self.started and (deltas or finish):
            # The role rides on the first real delta: a stream whose first event is a safety
            # stop fails before anything is committed to the client.
            self.started.add(index)
            first = deltas[0] if deltas else {}
            content = None if "tool_calls" in first else ""
            deltas[:1] = [{"role": "assistant", "content": content, **first}]
        out = [self._chunk(index, delta) for delta in deltas]
        if finish:
            self.finished.add(index)
            out.append(chat_chunk(id=self.id, model=self.model, created=self.created,
                                  index=index, finish_reason=finish))
        return out

    def _chunk(self, index: int, delta: dict[str, Any]) -> ChatBody:
        return chat_chunk(id=self.id, model=self.model, created=self.created, index=index,
                          delta=delta)

    def final(self) -> ChatBody:
        """The closing usage chunk (empty `choices`), as OpenAI sends with `include_usage`."""
        return chat_chunk(id=self.id, model=self.model, created=self.created,
                          empty_choices=True, usage=usage_from(self.meta))


# --- embeddings ------------------------------------------------------------------------------


def embed_request(texts: Sequence[str], model_name: str, dimensions: int | None) -> GeminiBody:
    """The Gemini API's `batchEmbedContents` body: one `EmbedContentRequest` per text, each
    naming the model as the URL does (`models/...`)."""
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": model_name, "content": {"parts": [{"text": text}]}}
        if dimensions:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def predict_request(texts: Sequence[str], dimensions: int | None) -> GeminiBody:
    """Vertex AI's `:predict` body for a text-embedding model."""
    out: GeminiBody = {"instances": [{"content": text} for text in texts]}
    if dimensions:
        out["parameters"] = {"outputDimensionality": dimensions}
    return out


def vectors_from(data: dict[str, Any], count: int, who: str) -> list[list[float]]:
    """The vectors of a `batchEmbedContents` answer, `count` of them, in request order."""
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != count:
        raise ProviderError("bad_response", f"{who} answered without one embedding per input")
    return [_values(e, who) for e in embeddings]


def predictions_from(data: dict[str, Any], count: int,
                     who: str) -> tuple[list[list[float]], int]:
    """The vectors of a Vertex `:predict` answer and the tokens its statistics count."""
    predictions = data.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != count:
        raise ProviderError("bad_response", f"{who} answered without one prediction per input")
    vectors, tokens = [], 0
    for prediction in predictions:
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        vectors.append(_values(embeddings, who))
        stats = (embeddings or {}).get("statistics") or {}
        tokens += int(stats.get("token_count") or 0)
    return vectors, tokens


def _values(embedding: Any, who: str) -> list[float]:
    values = embedding.get("values") if isinstance(embedding, dict) else None
    if not isinstance(values, list) or not values:
        raise ProviderError("bad_response", f"{who} answered an embedding without values")
    return [float(v) for v in values]


# --- errors ----------------------------------------------------------------------------------


def error_for(status: int, raw: bytes, retry_after: float | None, who: str) -> ProviderError:
    """A Google API error (`{"error": {"code", "message", "status", "details"}}`) classified
    for the executor: the retry hint comes from `Retry-After` or from `RetryInfo.retryDelay`;
    an invalid API key is `upstream_auth` although Google answers it with a 400."""
    message, state, details = "", "", []
    try:
        data = orjson.loads(raw)
        if isinstance(data, list) and data:  # streamGenerateContent without alt=sse
            data = data[0]
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message, state = str(err.get("message") or ""), str(err.get("status") or "")
            details = [d for d in err.get("details") or () if isinstance(d, dict)]
    except orjson.JSONDecodeError:
        message = raw[:200].decode("utf-8", "replace")
    reasons = {str(d.get("reason")) for d in details if d.get("reason")}
    for detail in details:
        if retry_after is None and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            retry_after = _duration(detail.get("retryDelay"))
    kind = classify_google(status, state, reasons)
    text = f"{who} answered HTTP {status}" + (f" {state}" if state else "")
    if kind == "upstream_auth":
        text += " (check the credentials and the project's access to the model)"
    elif message:
        text += f": {message[:500]}"
    return ProviderError(kind, text, status=status, retry_after=retry_after,
                         code=state.lower() or None)


def classify_google(status: int, state: str, reasons: set[str]) -> str:
    if reasons & {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"} or (
            state in ("UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION")):
        return "upstream_auth"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "upstream_auth"
    if status >= 500 or status in (408, 409, 499):
        return "upstream_5xx"
    return "client_error"


def _duration(value: Any) -> float | None:
    """A protobuf Duration in JSON (`"37s"`, `"0.250s"`) in seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None

"""Google's `generateContent` wire as the Gemini API (and Vertex AI) speak it.

Built from the public API reference: `POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent` (`?alt=sse`: one `GenerateContentResponse` per `data:` event, no
terminator; without it, one JSON array), the key in `x-goog-api-key` (or `?key=`), Google's
error shape `{"error": {"code", "message", "status", "details"}}` with `RetryInfo` on 429 and
`ErrorInfo` `API_KEY_INVALID` on a 400 for a bad key. Vertex AI's path
(`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`) is accepted
too, with a bearer token checked by `bearer` instead of a key.

The simulated model is deterministic: it answers "{name} says: {last user text}"; calls the
first allowed function (arguments `{"echo": text}`) when tools are offered and the last turn
is not a function response; fills a `responseSchema` with values derived from the text; blocks
a prompt containing `BLOCK-PROMPT` (`promptFeedback.blockReason: SAFETY`) and stops an answer
to `UNSAFE-ANSWER` with `finishReason: SAFETY` and no content.

Embedding models (a name containing `embedding`) answer `embedContent`, `batchEmbedContents`
(at most 100 requests, each naming the batch's model) and Vertex AI's `:predict` (`instances`,
at most 250, one for `gemini-embedding-*`; token counts in `statistics`) with
`google_vector(text, model, dimensions)`: deterministic, 3072 dimensions for
`gemini-embedding-*` and 768 for the others, shortened without being normalised again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from emancipate.testing.common import (
    Answer,
    ReplyFn,
    count_tokens,
    dumps,
    generate,
    new_id,
    schema_value,
    stops_of,
    word_pieces,
)
from emancipate.testing.openai_wire import embedding_vector

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}
_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_CONFIG_KEYS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
                "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
                "thinkingConfig", "responseModalities"}
_SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "maxItems",
                "minItems", "properties", "required", "minProperties", "maxProperties",
                "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
                "default", "items", "minimum", "maximum"}
_FINISH = {"end": "STOP", "length": "MAX_TOKENS", "stop_sequence": "STOP"}
EMBED_METHODS = ("embedContent", "batchEmbedContents", "predict")  # `predict`: Vertex AI
BLOCK_PROMPT = "BLOCK-PROMPT"
UNSAFE_ANSWER = "UNSAFE-ANSWER"


def google_error(status: int, message: str | None = None, *, retry_after: float | None = None,
                 reason: str | None = None) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if reason:
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}})
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{retry_after:g}s"})
    state = _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    error: dict[str, Any] = {"code": status, "message": message or _MESSAGES.get(
        status, f"HTTP {status}"), "status": state}
    if details:
        error["details"] = details
    return {"error": error}


class GeminiWire:
    """Answers one request the way generativelanguage.googleapis.com would."""

    def __init__(self, name: str, api_key: str | None, reply: ReplyFn | None,
                 chunks: int | None, *, bearer: Callable[[str], bool] | None = None) -> None:
        self.name = name
        self.api_key = api_key
        self.reply = reply
        self.chunks = chunks
        self.bearer = bearer

    # --- errors and broken bodies -------------------------------------------------------------

    def error(self, status: int, message: str | None = None, *, retry_after: float | None = None,
              reason: str | None = None) -> Answer:
        # Google puts the hint in RetryInfo, not in a Retry-After header.
        return Answer(status, body=google_error(status, message, retry_after=retry_after,
                                                reason=reason))

    def garbage_body(self) -> bytes:
        return b'{"candidates":[{"content":{"parts":[{"text":"this answer stops sh'

    def garbage_event(self) -> bytes:
        return b'data: {"candidates":[{"content":{"parts":[{"text":"oops\r\n\r\n'

    def error_event(self, status: int) -> bytes:
        return b"data: " + dumps(google_error(status)) + b"\r\n\r\n"

    def request_id_header(self) -> dict[str, str]:
        return {"x-goog-request-id": new_id("")}

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        query = query or {}
        denied = self._denied(headers, query)
        if denied is not None:
            return denied
        head, _, verb = path.rpartition(":")
        if method != "POST" or "/models/" not in head or verb not in (
                "generateContent", "streamGenerateContent", *EMBED_METHODS):
            return self.error(404, f"Method not found: {method} {path}")
        model = head.rsplit("/models/", 1)[1]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "Invalid JSON payload received.")
        if verb in EMBED_METHODS:
            return self._embed(verb, body, model)
        problem = _invalid(body)
        if problem:
            return self.error(400, problem)
        stream = verb == "streamGenerateContent"
        return self._generate(body, model, stream, sse=query.get("alt") == "sse")

    def _denied(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Answer | None:
        auth = headers.get("authorization", "")
        if self.bearer is not None:
            if auth.lower().startswith("bearer ") and self.bearer(auth[7:]):
                return None
            return self.error(401, "Request had invalid authentication credentials. Expected "
                              "OAuth 2 access token, login cookie or other valid authentication "
                              "credential.")
        if self.api_key is None:
            return None
        given = headers.get("x-goog-api-key") or query.get("key")
        if not given:
            return self.error(403, "Method doesn't allow unregistered callers (callers without "
                              "established identity). Please use API Key or other form of API "
                              "consumer identity to call this API.")
        if given != self.api_key:
            return self.error(400, "API key not valid. Please pass a valid API key.",
                              reason="API_KEY_INVALID")
        return None

    # --- the model ----------------------------------------------------------------------------

    def _generate(self, body: dict[str, Any], model: str, stream: bool, sse: bool) -> Answer:
        contents = body["contents"]
        config = body.get("generationConfig") or {}
        text = _last_user_text(contents)
        prompt_tokens = count_tokens(_system_text(body)) + sum(
            count_tokens(_turn_text(c)) for c in contents)
        base = {"modelVersion": model, "responseId": new_id("")[:22]}
        if BLOCK_PROMPT in text:
            feedback = {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}
            return self._send({**base, "promptFeedback": feedback,
                "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount":
                                  prompt_tokens}}, [], stream, sse)
        candidates, events = [], []
        used = 0
        for index in range(int(config.get("candidateCount") or 1)):
            parts, finish, pieces = self._answer(body, text, config)
            used += sum(count_tokens(p.get("text", "")) for p in parts) + sum(
                count_tokens(json.dumps(p["functionCall"]["args"])) for p in parts
                if "functionCall" in p)
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"},
                                    "finishReason": finish, "index": index}
            if finish == "SAFETY":
                cand = {"finishReason": finish, "index": index, "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH",
                     "blocked": True}]}
            candidates.append(cand)
            events.append((index, pieces, cand))
        meta = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": used,
                "totalTokenCount": prompt_tokens + used}
        full = {"candidates": candidates, "usageMetadata": meta, **base}
        return self._send(full, events, stream, sse)

    def _answer(self, body: dict[str, Any], text: str,
                config: dict[str, Any]) -> tuple[list[dict[str, Any]], str, list[str]]:
        """One candidate: its parts, finishReason and stream pieces (text pieces, or one)."""
        if UNSAFE_ANSWER in text:
            return [], "SAFETY", []
        tool = _tool_to_call(body)
        if tool is not None:
            return [{"functionCall": {"name": tool, "args": {"echo": text}}}], "STOP", [""]
        if config.get("responseMimeType") == "application/json":
            schema = config.get("responseSchema")
            value = schema_value(schema, text) if isinstance(schema, dict) else {"echo": text}
            reply = json.dumps(value)
            return [{"text": reply}], "STOP", word_pieces(reply)  # streamed in pieces too
        reply = self.reply(body) if self.reply else f"{self.name} says: {text}"
        gen = generate(reply, max_tokens=config.get("maxOutputTokens"),
                       stops=stops_of(config.get("stopSequences")), chunks=self.chunks)
        return [{"text": gen.text}], _FINISH[gen.finish], gen.pieces

    # --- embeddings ---------------------------------------------------------------------------

    def _embed(self, verb: str, body: dict[str, Any], model: str) -> Answer:
        if "embedding" not in model:
            return self.error(404, f"models/{model} is not found for API version v1beta, or is "
                              f"not supported for {verb}. Call ListModels to see the list of "
                              "available models and their supported methods.")
        if verb == "predict":
            return self._predict(body, model)
        requests = body.get("requests") if verb == "batchEmbedContents" else [
            {**body, "model": f"models/{model}"}]
        if not isinstance(requests, list) or not 1 <= len(requests) <= 100:
            return self.error(400, "* BatchEmbedContentsRequest.requests: between 1 and 100 "
                              "requests are allowed in one batch.")
        values = []
        for i, request in enumerate(requests):
            problem = _embed_problem(request, model, i)
            if problem:
                return self.error(400, problem)
            text = " ".join(_texts(request["content"]))
            values.append({"values": google_vector(text, model,
                                                   request.get("outputDimensionality"))})
        if verb == "embedContent":
            return Answer(200, body={"embedding": values[0]})
        return Answer(200, body={"embeddings": values})

    def _predict(self, body: dict[str, Any], model: str) -> Answer:
        """Vertex AI's text-embedding `:predict`: token counts in each prediction."""
        instances = body.get("instances")
        most = 1 if "gemini-embedding" in model else 250
        if not isinstance(instances, list) or not 1 <= len(instances) <= most:
            return self.error(400, f"Unable to submit request because the input has "
                              f"{len(instances) if isinstance(instances, list) else 0} "
                              f"instances; {model} takes from 1 to {most}.")
        params = body.get("parameters") or {}
        unknown = set(params) - {"outputDimensionality", "autoTruncate"}
        if unknown or set(body) - {"instances", "parameters"}:
            return self.error(400, "Invalid JSON payload received. Unknown name "
                              f'"{sorted(unknown or set(body))[0]}": Cannot find field.')
        predictions = []
        for instance in instances:
            text = instance.get("content") if isinstance(instance, dict) else None
            if not isinstance(text, str):
                return self.error(400, "Each instance needs a `content` string.")
            predictions.append({"embeddings": {
                "values": google_vector(text, model, params.get("outputDimensionality")),
                "statistics": {"token_count": count_tokens(text), "truncated": False}}})
        chars = sum(len(i["content"]) for i in instances)
        return Answer(200, body={"predictions": predictions,
                                 "metadata": {"billableCharacterCount": chars}})

    def _send(self, full: dict[str, Any], events: list[tuple[int, list[str], dict[str, Any]]],
              stream: bool, sse: bool) -> Answer:
        if not stream:
            return Answer(200, body=full, pieces=max(1, sum(len(e[1]) for e in events)))
        bodies = _stream_bodies(full, events)
        if not sse:  # streamGenerateContent without alt=sse: a JSON array, sent whole here
            return Answer(200, body=bodies, pieces=len(bodies))
        return Answer(200, events=[b"data: " + dumps(b) + b"\r\n\r\n" for b in bodies],
                      pieces=len(bodies))


def full_dimensions(model: str) -> int:
    return 3072 if "gemini-embedding" in model else 768


def google_vector(text: str, model: str, dimensions: int | None) -> list[float]:
    """The simulated embedding: a unit vector of the model's full size, cut to `dimensions`
    from the end and *not* normalised again, as Google answers `outputDimensionality`."""
    return embedding_vector(text, full_dimensions(model))[:dimensions or None]


def _embed_problem(request: Any, model: str, i: int) -> str | None:
    if not isinstance(request, dict):
        return f"* BatchEmbedContentsRequest.requests[{i}]: not an object"
    unknown = set(request) - {"model", "content", "taskType", "title", "outputDimensionality"}
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at ' \
               f"'requests[{i}]': Cannot find field."
    if request.get("model") != f"models/{model}":
        return (f"* BatchEmbedContentsRequest.requests[{i}].model: the model of each request "
                f"must be the model of the batch (models/{model})")
    if not isinstance(request.get("content"), dict) or not _texts(request["content"]):
        return f"* BatchEmbedContentsRequest.requests[{i}].content: content is not specified"
    dims = request.get("outputDimensionality")
    if dims is not None and not (isinstance(dims, int) and 1 <= dims <= full_dimensions(model)):
        return (f"* BatchEmbedContentsRequest.requests[{i}].output_dimensionality: must be "
                f"between 1 and {full_dimensions(model)}")
    return None


def _stream_bodies(full: dict[str, Any],
                   events: list[tuple[int, list[str], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The answer as the stream sends it: text piece by piece, finishReason and usage last."""
    base = {k: full[k] for k in ("modelVersion", "responseId")}
    if not events:  # a blocked prompt: one event saying so
        return [full]
    out: list[dict[str, Any]] = []
    for index, pieces, cand in events:
        parts = (cand.get("content") or {}).get("parts") or []
        calls = [p for p in parts if "functionCall" in p]
        texts = [] if calls else pieces
        for k, piece in enumerate(texts):
            last = k == len(texts) - 1
            item: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"},
                                    "index": index}
            if last:
                item["finishReason"] = cand["finishReason"]
            out.append({"candidates": [item], **base})
        if calls or not texts:
            out.append({"candidates": [cand], **base})
    out[-1]["usageMetadata"] = full["usageMetadata"]
    return out


def _invalid(body: dict[str, Any]) -> str | None:
    """What the real API would refuse with a 400, or None."""
    unknown = set(body) - {"contents", "systemInstruction", "generationConfig", "tools",
                           "toolConfig", "safetySettings", "cachedContent", "labels"}
    if unknown:
        return (f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": '
                "Cannot find field.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, turn in enumerate(contents):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}])"
        if not turn.get("parts"):
            return (f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not "
                    "be empty.")
    config = body.get("generationConfig") or {}
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        return (f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at '
                "'generation_config': Cannot find field.")
    limit = config.get("maxOutputTokens")
    if isinstance(limit, int) and not 1 <= limit <= 65536:
        return (f"Unable to submit request because it has a maxOutputTokens value of {limit} "
                "but the supported range is from 1 (inclusive) to 65537 (exclusive). Update the "
                "value and try again.")
    schema = config.get("responseSchema")
    if schema is not None:
        if config.get("responseMimeType") != "application/json":
            return "* GenerateContentRequest.generation_config.response_schema: responseSchema " \
                   "needs responseMimeType application/json"
        bad = _bad_schema_key(schema)
        if bad:
            return (f'Invalid JSON payload received. Unknown name "{bad}" at '
                    "'generation_config.response_schema': Cannot find field.")
    for tool in body.get("tools") or ():
        for decl in tool.get("functionDeclarations") or ():
            bad = _bad_schema_key(decl.get("parameters") or {})
            if bad:
                return (f'Invalid JSON payload received. Unknown name "{bad}" at '
                        "'tools[0].function_declarations[0].parameters': Cannot find field.")
    return None


def _bad_schema_key(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            return key
        nested = value.values() if key == "properties" and isinstance(value, dict) else (
            value if key == "anyOf" and isinstance(value, list) else [value] if key == "items"
            else [])
        for sub in nested:
            bad = _bad_schema_key(sub)
            if bad:
                return bad
    return None


def _texts(turn: dict[str, Any]) -> list[str]:
    return [str(p["text"]) for p in turn.get("parts") or () if isinstance(p, dict) and "text" in p]


def _turn_text(turn: dict[str, Any]) -> str:
    out = _texts(turn)
    for part in turn.get("parts") or ():
        if isinstance(part, dict) and "functionResponse" in part:
            out.append(json.dumps(part["functionResponse"].get("response")))
    return " ".join(out)


def _system_text(body: dict[str, Any]) -> str:
    return " ".join(_texts(body.get("systemInstruction") or {}))


def _last_user_text(contents: list[dict[str, Any]]) -> str:
    for turn in reversed(contents):
        if turn.get("role") == "user" and _texts(turn):
            return "".join(_texts(turn))
    return ""


def _tool_to_call(body: dict[str, Any]) -> str | None:
    decls = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not decls or calling.get("mode") == "NONE":
        return None
    last = body["contents"][-1]
    if any("functionResponse" in p for p in last.get("parts") or ()):
        return None  # the function answered: now the model answers in text
    allowed = calling.get("allowedFunctionNames") or [d.get("name") for d in decls]
    return str(allowed[0])

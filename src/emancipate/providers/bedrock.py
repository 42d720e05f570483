"""Amazon Bedrock Runtime: the Converse and ConverseStream APIs, signed with SigV4.

Transport only: translation is `providers/bedrock_translate.py`, signing and credentials
`providers/aws_signing.py`, the stream framing `providers/eventstream.py`.

`POST {endpoint}/model/{modelId}/converse` answers JSON; `/converse-stream` answers
`application/vnd.amazon.eventstream` messages (`messageStart`, `contentBlockStart`,
`contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata`; or an `exception`). The
model id may be a foundation model (`anthropic.claude-3-5-haiku-20241022-v1:0`), an inference
profile (`us.anthropic.claude-sonnet-4-20250514-v1:0`) or an ARN: it is percent-encoded into
one path segment, and the request is signed exactly as it is sent.

A stream is complete once `messageStop` came; one that ends before (or mid-message) is
`stream_cut`, a message with a bad checksum is `bad_response`, an `exception` message is
classified by its `:exception-type` (`throttlingException` is `rate_limited`...).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from emancipate.config import BedrockProvider
from emancipate.protocol import ChatCompletionRequest, ImagePart
from emancipate.providers.aws_signing import AwsSigner
from emancipate.providers.base import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    check_legacy,
    check_parts,
    check_token_limit,
)
from emancipate.providers.bedrock_translate import (
    COHERE_BATCH,
    ConverseStream,
    cohere_request,
    cohere_vectors,
    completion_from,
    converse_request,
    embedding_family,
    error_for,
    image_refusal,
    stream_error_for,
    titan_request,
    titan_vector,
)
from emancipate.providers.embeddings import (
    EmbeddingBody,
    batches,
    each_of,
    embedding_list,
    estimated_tokens,
    texts_of,
)
from emancipate.providers.eventstream import (
    EventMessage,
    EventStreamDecoder,
    EventStreamError,
    FrameTooLarge,
)
from emancipate.providers.http import DEFAULT_MAX_BODY, HTTPUpstream
from emancipate.providers.structured import STRUCTURED_WITH_TOOLS, structured_tool

EVENT_STREAM = "application/vnd.amazon.eventstream"
# Converse's document and audio blocks are not translated yet: files and audio are refused.
BEDROCK_PARTS = frozenset({"text", "image_url", "refusal"})


class AwsUpstream(HTTPUpstream):
    """HTTPUpstream whose errors are read as AWS JSON errors (`x-amzn-ErrorType`)."""

    async def error_from(self, resp: aiohttp.ClientResponse) -> ProviderError:
        raw = await self.read_error_body(resp)
        return error_for(resp.status, resp.headers.get("x-amzn-errortype", ""), raw,
                         f"provider {self.provider!r}")

    async def event_messages(
            self, resp: aiohttp.ClientResponse) -> AsyncGenerator[EventMessage, None]:
        """The event-stream messages of a body, as they arrive; each at most `max_body` bytes.

        Closed at the end of the body, the connection goes back to the pool; closed at any
        other point (error, client gone), it is dropped, which stops the generation."""
        decoder = EventStreamDecoder(self.max_body)
        whole = False
        try:
            async for piece in resp.content.iter_any():
                for message in decoder.feed(piece):
                    yield message
            if decoder.pending:
                raise ProviderError("stream_cut", f"provider {self.provider!r} ended the "
                                    "stream in the middle of a message")
            whole = True
        except FrameTooLarge as exc:
            raise self.too_large() from exc
        except EventStreamError as exc:
            raise ProviderError("bad_response", f"provider {self.provider!r} sent a broken "
                                f"event-stream message ({exc})") from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(
                "timeout", f"provider {self.provider!r} stalled mid-stream") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError("stream_cut", f"provider {self.provider!r} cut the stream "
                                f"({type(exc).__name__})") from exc
        finally:
            if whole:
                resp.release()
            else:
                resp.close()


class Bedrock(Provider):
    def __init__(self, name: str, cfg: BedrockProvider, max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.http = AwsUpstream(name, cfg.timeouts, cfg.max_concurrency, max_body)
        self.signer = AwsSigner(name, cfg)
        self.endpoint = cfg.endpoint_url or f"https://bedrock-runtime.{cfg.region}.amazonaws.com"
        self.headers = {"Content-Type": "application/json", **cfg.headers}

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        who = f"provider {self.name!r} (Bedrock Converse)"
        check_token_limit(request, self.cfg.context_window, who)
        if request.n != 1:
            raise Unsupported("n", f"{who} returns one choice only")
        if (request.response_format is not None and request.response_format.type != "text"
                and request.tools):
            raise Unsupported("response_format", f"{who} {STRUCTURED_WITH_TOOLS}")
        if (request.model_extra or {}).get("logprobs"):
            raise Unsupported("logprobs", f"{who} returns no logprobs")
        check_legacy(request, who)
        check_parts(request, who, BEDROCK_PARTS, lambda part: image_refusal(
            part.image_url.url) if isinstance(part, ImagePart) else None)

    def url_for(self, model: str, operation: str) -> URL:
        """Encoded once, sent as is: the signature covers this exact path."""
        return URL(f"{self.endpoint}/model/{quote(model, safe='')}/{operation}", encoded=True)

    async def _post(self, model: str, operation: str, payload: dict[str, Any],
                    accept: str) -> aiohttp.ClientResponse:
        url = self.url_for(model, operation)
        raw = orjson.dumps(payload)
        headers = await self.signer.headers_for(str(url), raw, {**self.headers, "Accept": accept})
        return await self.http.post(url, raw, headers)

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        resp = await self._post(model, "converse", converse_request(body), "application/json")
        data = await self.http.read_json(resp)
        return completion_from(data, model, f"provider {self.name!r}", structured_tool(body))

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        resp = await self._post(model, "converse-stream", converse_request(body), EVENT_STREAM)
        if EVENT_STREAM not in resp.headers.get("content-type", ""):
            resp.release()
            raise ProviderError(
                "bad_response", f"provider {self.name!r} did not answer with an event stream")
        state = ConverseStream(model, f"provider {self.name!r}", structured_tool(body))
        messages = self.http.event_messages(resp)
        try:
            async for message in messages:
                for chunk in state.chunks(message.event_type, self._payload(message)):
                    yield chunk
        finally:
            await messages.aclose()
        if not state.complete:
            raise ProviderError(
                "stream_cut", f"provider {self.name!r} ended the stream before messageStop")
        yield state.final()

    def serves_embeddings(self, model: str) -> bool:
        return embedding_family(model) is not None

    async def embeddings(self, body: EmbeddingBody, model: str) -> EmbeddingBody:
        """InvokeModel with the model's own body: Titan one text a call, Cohere up to 96.
        Every body is built (and a bad `dimensions` refused) before the first call."""
        who = f"provider {self.name!r}"
        texts = texts_of(body, who)
        dimensions = body.get("dimensions")
        if embedding_family(model) == "titan":
            answers = await each_of([titan_request(t, model, dimensions) for t in texts],
                                    lambda payload: self._titan(model, payload))
        else:
            payloads = [cohere_request(part, body.get("input_type"), model, dimensions)
                        for part in batches(texts, COHERE_BATCH)]
            answers = await each_of(payloads, lambda payload: self._cohere(model, payload))
        vectors = [v for part, _ in answers for v in part]
        return embedding_list(vectors, model, sum(tokens for _, tokens in answers),
                              body.get("encoding_format"))

    async def _titan(self, model: str,
                     payload: dict[str, Any]) -> tuple[list[list[float]], int]:
        resp = await self._post(model, "invoke", payload, "application/json")
        vector, tokens = titan_vector(await self.http.read_json(resp), f"provider {self.name!r}")
        return [vector], tokens

    async def _cohere(self, model: str,
                      payload: dict[str, Any]) -> tuple[list[list[float]], int]:
        resp = await self._post(model, "invoke", payload, "application/json")
        # Cohere's body counts nothing; InvokeModel says it in a header.
        counted = resp.headers.get("x-amzn-bedrock-input-token-count", "")
        texts = payload["texts"]
        vectors = cohere_vectors(await self.http.read_json(resp), len(texts),
                                 f"provider {self.name!r}")
        return vectors, int(counted) if counted.isdigit() else estimated_tokens(texts)

    def _payload(self, message: EventMessage) -> dict[str, Any]:
        if message.message_type != "event":
            raise stream_error_for(message.message_type, message.event_type, message.payload,
                                   f"provider {self.name!r}")
        try:
            payload = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("bad_response", f"provider {self.name!r} sent an invalid "
                                f"{message.event_type} event") from exc
        if not isinstance(payload, dict):
            raise ProviderError("bad_response", f"provider {self.name!r} sent a non-object")
        return payload

    async def aclose(self) -> None:
        await self.http.aclose()

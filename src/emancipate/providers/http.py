"""The shared HTTP client plumbing for vendor adapters (aiohttp: fastest asyncio client)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import orjson
from yarl import URL

from emancipate.config import Timeouts
from emancipate.providers.base import ProviderError, classify_status, retry_after_seconds
from emancipate.tracing import UPSTREAM_TRACE

DEFAULT_MAX_BODY = 16 * 1024 * 1024  # `server.max_upstream_body_bytes`
_MAX_ERROR_BODY = 64 * 1024  # an error answer is read for its message only


def read_secret(env_name: str | None) -> str | None:
    """Credentials come only from the environment, read at start-up, never logged."""
    if not env_name:
        return None
    return os.environ.get(env_name) or None


class HTTPUpstream:
    """A pooled aiohttp session for one provider, created lazily inside the running loop.

    No answer is read into memory past `max_body` bytes (a whole JSON body, or one stream
    event): a vendor, or anything impersonating one, cannot grow the gateway without bound.
    """

    def __init__(self, provider: str, timeouts: Timeouts, limit: int | None = None,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        self.provider = provider
        self.timeouts = timeouts
        self.limit = limit or 256
        self.max_body = max_body
        self._session: aiohttp.ClientSession | None = None
        self._draining: set[asyncio.Task[None]] = set()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.limit, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.timeouts.connect,
                sock_read=self.timeouts.first_token,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, url: str | URL, payload: dict[str, Any] | bytes, headers: dict[str, str],
        params: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST and return the response once its headers are in; errors classified.

        `payload` as bytes and `url` as an encoded `URL` go out exactly as given (a signed
        request: `providers/aws_signing.py`). The attempt's W3C trace context is added when
        tracing is on (`tracing.UPSTREAM_TRACE`; outside the signature, as AWS allows)."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        trace = UPSTREAM_TRACE.get()
        if trace is not None:
            headers = {**headers, **trace}
        try:
            resp = await self.session().post(
                url, data=data, headers=headers, params=params or None
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError("timeout", f"provider {self.provider!r} timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ProviderError(
                "connect", f"cannot connect to provider {self.provider!r} ({exc.os_error})"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(
                "connect", f"connection to provider {self.provider!r} failed ({type(exc).__name__})"
            ) from exc
        if resp.status >= 400:
            raise await self.error_from(resp)
        return resp

    def too_large(self) -> ProviderError:
        return ProviderError(
            "too_large", f"provider {self.provider!r} sent an answer larger than "
            f"{self.max_body} bytes, the gateway's server.max_upstream_body_bytes (ask for a "
            "smaller answer: fewer choices, tokens or dimensions)")

    async def _read_bounded(self, resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
        """The body, or None as soon as it is known to exceed `limit` (declared or read)."""
        declared = resp.content_length
        if declared is not None and declared > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        raw: bytes | None = b""
        try:
            raw = await self._read_bounded(resp, self.max_body)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError("timeout", f"provider {self.provider!r} timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(
                "connect", f"provider {self.provider!r} closed the connection mid-answer"
            ) from exc
        finally:
            if raw is None:  # the rest is never read: drop the connection, not back to the pool
                resp.close()
            else:
                resp.release()
        if raw is None:
            raise self.too_large()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                "bad_response", f"provider {self.provider!r} answered with invalid JSON"
            ) from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_response", f"provider {self.provider!r} answered a non-object")
        return data

    async def error_from(self, resp: aiohttp.ClientResponse) -> ProviderError:
        """Turn an upstream error response into a classified error, keeping its message."""
        raw = await self.read_error_body(resp)
        message, param, code = "", None, None
        try:
            data = orjson.loads(raw)
            err = data.get("error", data) if isinstance(data, dict) else {}
            if isinstance(err, dict):
                message = str(err.get("message") or "")
                param = err.get("param") if isinstance(err.get("param"), str) else None
                code = err.get("code") if isinstance(err.get("code"), str) else None
            elif isinstance(err, str):
                message = err
        except orjson.JSONDecodeError:
            message = raw[:200].decode("utf-8", "replace")
        kind = classify_status(resp.status)
        text = f"provider {self.provider!r} answered HTTP {resp.status}"
        if message and kind != "upstream_auth":
            text += f": {message[:500]}"
        return ProviderError(
            kind, text, status=resp.status,
            retry_after=retry_after_seconds(resp.headers.get("retry-after")),
            param=param, code=code,
        )

    async def read_error_body(self, resp: aiohttp.ClientResponse) -> bytes:
        """The first 64 KiB of an error answer (they carry the message); the connection goes
        back to the pool only when the body was read whole."""
        raw = b""
        try:
            while len(raw) < _MAX_ERROR_BODY:  # its first 64 KiB carry the message
                chunk = await resp.content.read(_MAX_ERROR_BODY - len(raw))
                if not chunk:
                    break
                raw += chunk
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        finally:
            if resp.content.at_eof():
                resp.release()
            else:  # the rest of a long error body is never read
                resp.close()
        return raw

    async def sse_events(self, resp: aiohttp.ClientResponse, end: bytes = b"[DONE]",
                         ) -> AsyncGenerator[tuple[str, bytes], None]:
        """Yield (event name, data) pairs from a server-sent-events body.

        Parsed from whatever the socket delivered (not line by line through aiohttp's
        readline): one split per read, one slice per event in the common case.

        Closed right after yielding the `end` data (the stream is complete), the rest of the
        body (the chunked terminator) is read in the background so that the connection goes
        back to the pool; closed at any other point (error, client gone), the connection is
        dropped, which stops the upstream's generation.
        """
        pending = b""
        last = b""
        try:
            async for piece in resp.content.iter_any():
                buf = pending + piece if pending else piece
                tail = b""
                if b"\r" in buf:  # CRLF or CR line ends: normalise (a CR may end a read)
                    if buf.endswith(b"\r"):
                        buf, tail = buf[:-1], b"\r"
                    buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                blocks = buf.split(b"\n\n")
                pending = blocks.pop() + tail
                if len(pending) > self.max_body:  # one event that never ends
                    raise self.too_large()
                for block in blocks:
                    event = _sse_block(block)
                    if event is not None:
                        last = event[1]
                        yield event
            if pending:
                event = _sse_block(pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                                   .rstrip(b"\n"))
                if event is not None:
                    yield event
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(
                "timeout", f"provider {self.provider!r} stalled mid-stream"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(
                "stream_cut", f"provider {self.provider!r} cut the stream ({type(exc).__name__})"
            ) from exc
        finally:
            if last == end and not resp.content.at_eof():
                self._drain_later(resp)
            else:
                resp.release()

    def _drain_later(self, resp: aiohttp.ClientResponse) -> None:
        task = asyncio.ensure_future(_drain(resp, self.timeouts.first_token))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)


async def _drain(resp: aiohttp.ClientResponse, limit: float) -> None:
    """Read what is left of a finished answer, then release it: back to the pool at EOF."""
    try:
        async with asyncio.timeout(limit):
            while await resp.content.readany():
                pass
    except BaseException:  # noqa: BLE001 - best effort: the connection is dropped instead
        pass
    finally:
        resp.release()


def _sse_block(block: bytes) -> tuple[str, bytes] | None:
    """One event block (lines without the blank line ending it) → (event, data), or None when
    it carries no data (comments, keep-alives)."""
    if block.startswith(b"data:") and b"\n" not in block:  # the usual case: one data line
        return "", block[5:].lstrip(b" ")
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    return (event, b"\n".join(data)) if data else None

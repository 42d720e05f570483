"""The shared HTTP client plumbing for vendor adapters (aiohttp: fastest asyncio client)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from emancipate.config import Timeouts
from emancipate.providers.base import ProviderError, classify_status, retry_after_seconds


def read_secret(env_name: str | None) -> str | None:
    """Credentials come only from the environment, read at start-up, never logged."""
    if not env_name:
        return None
    return os.environ.get(env_name) or None


class HTTPUpstream:
    """A pooled aiohttp session for one provider, created lazily inside the running loop."""

    def __init__(self, provider: str, timeouts: Timeouts, limit: int | None = None) -> None:
        self.provider = provider
        self.timeouts = timeouts
        self.limit = limit or 256
        self._session: aiohttp.ClientSession | None = None

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
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str],
        params: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST and return the response once its headers are in; errors classified."""
        try:
            resp = await self.session().post(
                url, data=orjson.dumps(payload), headers=headers, params=params or None
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

    async def read_json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        try:
            raw = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError("timeout", f"provider {self.provider!r} timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(
                "connect", f"provider {self.provider!r} closed the connection mid-answer"
            ) from exc
        finally:
            resp.release()
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
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            raw = b""
        finally:
            resp.release()
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

    async def sse_events(self, resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, bytes]]:
        """Yield (event name, data) pairs from a server-sent-events body."""
        event = ""
        data: list[bytes] = []
        try:
            async for raw_line in resp.content:
                line = raw_line.rstrip(b"\r\n")
                if not line:
                    if data:
                        yield event, b"\n".join(data)
                    event, data = "", []
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip(b" "))
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
            if data:
                yield event, b"\n".join(data)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(
                "timeout", f"provider {self.provider!r} stalled mid-stream"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError(
                "stream_cut", f"provider {self.provider!r} cut the stream ({type(exc).__name__})"
            ) from exc
        finally:
            resp.release()

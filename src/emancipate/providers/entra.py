"""Microsoft Entra ID bearer tokens by the OAuth 2.0 client-credentials grant.

One `EntraTokens` per provider: the token is cached and replaced `refresh_margin` seconds
before it expires; concurrent requests that find it due wait on one fetch (single flight).

Errors, all `ProviderError` (the executor fails over on each, none is retried on the target):
- `upstream_auth`: the endpoint refused the credentials (400/401/403: wrong tenant, client id
  or secret, unknown scope) or the secret's environment variable is empty. The message names
  the tenant, the client id, Entra's `error` and its AADSTS code, never the secret.
- `rate_limited` / `upstream_5xx`: the endpoint is throttling or failing.
- `connect` / `timeout` / `bad_response`: the endpoint cannot be reached or answered nonsense.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aiohttp
import orjson

from emancipate.config import EntraAuth
from emancipate.providers.base import ProviderError, classify_status, retry_after_seconds
from emancipate.providers.http import HTTPUpstream, read_secret

_AADSTS = re.compile(r"AADSTS\d+")
ENTRA_REFUSED = "entra_refused"  # `code` of the token endpoint's refusals


def token_url_for(auth: EntraAuth) -> str:
    """The configured endpoint, or the public cloud's for the tenant."""
    return auth.token_url or f"https://login.microsoftonline.com/{auth.tenant_id}/oauth2/v2.0/token"


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic time from which the token is replaced


class EntraTokens:
    """The current bearer token of one service principal, fetched through `http`'s pool."""

    def __init__(self, provider: str, auth: EntraAuth, http: HTTPUpstream) -> None:
        self.provider = provider
        self.auth = auth
        self.http = http
        self.url = token_url_for(auth)
        self.secret = read_secret(auth.client_secret_env)
        self.fetches = 0  # tokens obtained: exported in `stats()`
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def bearer(self) -> str:
        """A token valid for at least `refresh_margin` more seconds (or as long as Entra gave)."""
        token = self._token
        if token is not None and time.monotonic() < token.refresh_at:
            return token.value
        async with self._lock:  # one fetch; the others find the fresh token when they get in
            token = self._token
            if token is None or time.monotonic() >= token.refresh_at:
                token = self._token = await self._fetch()
            return token.value

    def invalidate(self) -> None:
        """Drop the cached token (the API refused it: revoked, or the clock was wrong)."""
        self._token = None

    async def _fetch(self) -> _Token:
        if not self.secret:
            raise ProviderError(
                "upstream_auth", f"provider {self.provider!r}: the Entra ID client secret is "
                f"missing: set the environment variable {self.auth.client_secret_env}")
        form = {"grant_type": "client_credentials", "client_id": self.auth.client_id,
                "client_secret": self.secret, "scope": self.auth.scope}
        started = time.monotonic()
        try:
            async with self.http.session().post(self.url, data=form) as resp:
                raw = await resp.content.read(64 * 1024)
                status, retry_after = resp.status, resp.headers.get("retry-after")
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError("timeout", f"provider {self.provider!r}: the Entra ID token "
                                "endpoint timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError("connect", f"provider {self.provider!r}: cannot reach the Entra "
                                f"ID token endpoint {self.url} ({type(exc).__name__})") from exc
        if status >= 400:
            raise self._refusal(status, raw, retry_after)
        try:
            data = orjson.loads(raw)
            value, lifetime = str(data["access_token"]), float(data["expires_in"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderError("bad_response", f"provider {self.provider!r}: the Entra ID token "
                                "endpoint answered without access_token / expires_in") from exc
        self.fetches += 1
        # Lifetime counts from the request: the answer may have taken a while to arrive.
        return _Token(value, started + lifetime - self.auth.refresh_margin)

    def _refusal(self, status: int, raw: bytes, retry_after: str | None) -> ProviderError:
        error, code = "", ""
        try:
            data = orjson.loads(raw)
            error = str(data.get("error") or "")
            found = _AADSTS.search(str(data.get("error_description") or ""))
            code = found.group(0) if found else ""
        except (orjson.JSONDecodeError, AttributeError):
            pass
        kind = "upstream_auth" if status in (400, 401, 403) else classify_status(status)
        detail = ", ".join(x for x in (error, code) if x) or f"HTTP {status}"
        hint = (" (check entra.tenant_id, entra.client_id, entra.scope and the secret in "
                f"{self.auth.client_secret_env})") if kind == "upstream_auth" else ""
        return ProviderError(
            kind, f"provider {self.provider!r}: Entra ID refused a token for client "
            f"{self.auth.client_id!r} in tenant {self.auth.tenant_id!r}: HTTP {status} "
            f"{detail}{hint}", status=status, retry_after=retry_after_seconds(retry_after),
            code=ENTRA_REFUSED)

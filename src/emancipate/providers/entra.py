"""Microsoft Entra ID bearer tokens: a service principal's client-credentials grant
(`EntraTokens`), or the host's managed identity (`ManagedIdentityTokens`).

One token source per provider: the token is cached and replaced `refresh_margin` seconds
before it expires; concurrent requests that find it due wait on one fetch (single flight).
Both forms share that logic (`BearerTokens`) and differ only in how a token is asked for.

Managed identity has two token endpoints, both answering `expires_on` as a string of epoch
seconds (and IMDS `expires_in` as a string too):
- `imds`: `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01
  &resource=…[&client_id=…]` with `Metadata: true` (VMs, scale sets, AKS nodes);
- `app-service`: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…[&client_id=…]` with
  `X-IDENTITY-HEADER: $IDENTITY_HEADER` (App Service, Functions, Container Apps).
The variables are read once, at start-up.

Errors, all `ProviderError` (the executor fails over on each, none is retried on the target):
- `upstream_auth`: the endpoint refused (400/401/403: wrong tenant, client id or secret,
  unknown scope; for a managed identity: no identity assigned, an unknown `client_id`, a
  wrong `X-IDENTITY-HEADER`) or a credential's environment variable is empty. The message
  names the tenant and client id (or the identity endpoint), the endpoint's `error` and its
  AADSTS code, never a secret. `code` is `entra_refused`.
- `rate_limited` / `upstream_5xx`: the endpoint is throttling or failing (IMDS answers 404 and
  410 while it is updating: `upstream_5xx`).
- `connect` / `timeout` / `bad_response`: the endpoint cannot be reached or answered nonsense.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from emancipate.config import EntraAuth, ManagedIdentityAuth, ManagedIdentityForm
from emancipate.providers.base import ProviderError, classify_status, retry_after_seconds
from emancipate.providers.http import HTTPUpstream, read_secret

_AADSTS = re.compile(r"AADSTS\d+")
ENTRA_REFUSED = "entra_refused"  # `code` of the token endpoint's refusals
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"


def token_url_for(auth: EntraAuth) -> str:
    """The configured endpoint, or the public cloud's for the tenant."""
    return auth.token_url or f"https://login.microsoftonline.com/{auth.tenant_id}/oauth2/v2.0/token"


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic time from which the token is replaced


@dataclass(slots=True)
class _Reply:
    status: int
    raw: bytes
    retry_after: str | None


class BearerTokens:
    """The current bearer token of one identity, fetched through `http`'s pool; subclasses
    say how a token is asked for (`_fetch`) and how a refusal reads (`_refusal`)."""

    what = "Entra ID"  # names the endpoint in messages

    def __init__(self, provider: str, http: HTTPUpstream, refresh_margin: float) -> None:
        self.provider = provider
        self.http = http
        self.refresh_margin = refresh_margin
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
        raise NotImplementedError

    async def _call(self, method: str, url: str, **kwargs: Any) -> _Reply:
        """One request to the token endpoint, foreign exceptions mapped here."""
        try:
            async with self.http.session().request(method, url, **kwargs) as resp:
                raw = await resp.content.read(64 * 1024)
                return _Reply(resp.status, raw, resp.headers.get("retry-after"))
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError("timeout", f"provider {self.provider!r}: the {self.what} token "
                                "endpoint timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderError("connect", f"provider {self.provider!r}: cannot reach the "
                                f"{self.what} token endpoint {url} ({type(exc).__name__})") from exc

    def _token_from(self, raw: bytes, started: float) -> _Token:
        """`access_token` with `expires_on` (epoch seconds, a string from managed identity) or
        `expires_in`; the lifetime counts from the request, as the answer may have been slow."""
        try:
            data = orjson.loads(raw)
            value = str(data["access_token"])
            if data.get("expires_on") not in (None, ""):
                lifetime = float(data["expires_on"]) - time.time() + (time.monotonic() - started)
            else:
                lifetime = float(data["expires_in"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderError("bad_response", f"provider {self.provider!r}: the {self.what} "
                                "token endpoint answered without access_token / expires_in"
                                ) from exc
        self.fetches += 1
        return _Token(value, started + lifetime - self.refresh_margin)


def _error_fields(raw: bytes) -> tuple[str, str]:
    """The endpoint's `error` and the AADSTS code (or a short description) of a refusal."""
    try:
        data = orjson.loads(raw)
        description = str(data.get("error_description") or "")
        found = _AADSTS.search(description)
        return str(data.get("error") or ""), found.group(0) if found else description[:120]
    except (orjson.JSONDecodeError, AttributeError):
        return "", ""


class EntraTokens(BearerTokens):
    """A service principal's tokens: the client-credentials grant, form-posted."""

    def __init__(self, provider: str, auth: EntraAuth, http: HTTPUpstream) -> None:
        super().__init__(provider, http, auth.refresh_margin)
        self.auth = auth
        self.url = token_url_for(auth)
        self.secret = read_secret(auth.client_secret_env)

    async def _fetch(self) -> _Token:
        if not self.secret:
            raise ProviderError(
                "upstream_auth", f"provider {self.provider!r}: the Entra ID client secret is "
                f"missing: set the environment variable {self.auth.client_secret_env}")
        form = {"grant_type": "client_credentials", "client_id": self.auth.client_id,
                "client_secret": self.secret, "scope": self.auth.scope}
        started = time.monotonic()
        reply = await self._call("POST", self.url, data=form)
        if reply.status >= 400:
            raise self._refusal(reply)
        return self._token_from(reply.raw, started)

    def _refusal(self, reply: _Reply) -> ProviderError:
        error, code = _error_fields(reply.raw)
        code = code if code.startswith("AADSTS") else ""
        status = reply.status
        kind = "upstream_auth" if status in (400, 401, 403) else classify_status(status)
        detail = ", ".join(x for x in (error, code) if x) or f"HTTP {status}"
        hint = (" (check entra.tenant_id, entra.client_id, entra.scope and the secret in "
                f"{self.auth.client_secret_env})") if kind == "upstream_auth" else ""
        return ProviderError(
            kind, f"provider {self.provider!r}: Entra ID refused a token for client "
            f"{self.auth.client_id!r} in tenant {self.auth.tenant_id!r}: HTTP {status} "
            f"{detail}{hint}", status=status, retry_after=retry_after_seconds(reply.retry_after),
            code=ENTRA_REFUSED)


class ManagedIdentityTokens(BearerTokens):
    """The host's managed identity: IMDS or the App Service identity endpoint."""

    what = "managed identity"

    def __init__(self, provider: str, auth: ManagedIdentityAuth, http: HTTPUpstream) -> None:
        super().__init__(provider, http, auth.refresh_margin)
        self.auth = auth
        self.identity_endpoint = os.environ.get("IDENTITY_ENDPOINT") or None
        self.identity_header = read_secret("IDENTITY_HEADER")
        self.form = self._form_for(auth.form)
        self.url = auth.endpoint or (self.identity_endpoint if self.form == "app-service"
                                     else IMDS_TOKEN_URL)

    def _form_for(self, form: ManagedIdentityForm) -> ManagedIdentityForm:
        if form != "auto":
            return form
        return "app-service" if self.identity_endpoint and self.identity_header else "imds"

    async def _fetch(self) -> _Token:
        params = {"resource": self.auth.resource}
        if self.auth.client_id:
            params["client_id"] = self.auth.client_id
        if self.form == "imds":
            params["api-version"] = IMDS_API_VERSION
            headers = {"Metadata": "true"}
        else:
            if not self.url or not self.identity_header:
                raise ProviderError(
                    "upstream_auth", f"provider {self.provider!r}: the App Service managed "
                    "identity needs the environment variables IDENTITY_ENDPOINT and "
                    "IDENTITY_HEADER (is an identity assigned to the app?)")
            params["api-version"] = APP_SERVICE_API_VERSION
            headers = {"X-IDENTITY-HEADER": self.identity_header}
        started = time.monotonic()
        reply = await self._call("GET", str(self.url), params=params, headers=headers)
        if reply.status >= 400:
            raise self._refusal(reply)
        return self._token_from(reply.raw, started)

    def _refusal(self, reply: _Reply) -> ProviderError:
        error, detail = _error_fields(reply.raw)
        status = reply.status
        if status in (400, 401, 403):
            kind = "upstream_auth"
        elif status in (404, 410):  # IMDS: "the endpoint is updating", retry later
            kind = "upstream_5xx"
        else:
            kind = classify_status(status)
        who = (f"user-assigned identity {self.auth.client_id!r}" if self.auth.client_id
               else "the system-assigned identity")
        hint = (" (check that the identity is assigned to this host, managed_identity.client_id"
                " and managed_identity.resource)") if kind == "upstream_auth" else ""
        text = ", ".join(x for x in (error, detail) if x) or f"HTTP {status}"
        return ProviderError(
            kind, f"provider {self.provider!r}: the {self.form} managed identity endpoint "
            f"refused a token for {who}: HTTP {status} {text}{hint}", status=status,
            retry_after=retry_after_seconds(reply.retry_after), code=ENTRA_REFUSED)

"""Google Cloud OAuth 2.0 access tokens for Vertex AI, with google-auth.

The key file named by the provider's `credentials_env` (a service account's JSON key) is
exchanged at its own `token_uri` for a bearer token (the JWT-bearer grant: a JWT signed with
the account's private key); with the variable unset, Application Default Credentials are used
(`gcloud auth application-default login`, the metadata server of a Google Cloud VM or pod).
Scope: `cloud-platform`.

The token is cached and replaced once google-auth considers it expired (a few minutes before
`expires_in` runs out); concurrent requests that find it due wait on one fetch (single flight).
Fetches do blocking I/O (the file, the token endpoint): they run in a daemon thread bounded by
`TOKEN_TIMEOUT` (`auth/blocking.py` says why not `asyncio.to_thread`).

Errors, all `ProviderError`: `upstream_auth` when there are no credentials, the key file cannot
be read, or the token endpoint refuses the grant (the message names the variable, the file
and Google's `error`, never the key); `connect` when the endpoint cannot be reached; `timeout`
past the bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import google.auth
import google.auth.transport.requests
from google.auth import credentials as google_credentials
from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
from google.oauth2 import service_account

from emancipate.auth.blocking import DaemonPool
from emancipate.config import VertexProvider
from emancipate.providers.base import ProviderError
from emancipate.providers.http import read_secret

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_TIMEOUT = 20.0  # one token endpoint (or metadata server) round trip, and a file read

T = TypeVar("T")


class GoogleTokens:
    """The current bearer token of one provider's Google credentials."""

    def __init__(self, provider: str, cfg: VertexProvider) -> None:
        self.provider = provider
        self.cfg = cfg
        self.key_file = read_secret(cfg.credentials_env)  # a path; the key stays in the file
        self.fetches = 0  # tokens obtained: exported in `stats()`
        self._credentials: google_credentials.Credentials | None = None
        self._lock = asyncio.Lock()
        self._pool = DaemonPool(size=1, name=f"google-tokens-{provider}")

    async def bearer(self) -> str:
        credentials = self._credentials
        if credentials is not None and credentials.valid:
            return str(credentials.token)
        async with self._lock:  # one fetch; the others find the fresh token when they get in
            credentials = self._credentials
            if credentials is None or not credentials.valid:
                credentials = self._credentials = await self._blocking(self._refreshed)
            return str(credentials.token)

    def invalidate(self) -> None:
        """Drop the cached token (Vertex refused it: revoked, or the clock was wrong)."""
        if self._credentials is not None:
            self._credentials.token = None

    def _refreshed(self) -> google_credentials.Credentials:
        """Load the credentials once, then refresh them (runs in the daemon thread)."""
        credentials = self._credentials or self._load()
        credentials.refresh(google.auth.transport.requests.Request())
        self.fetches += 1
        return credentials

    def _load(self) -> google_credentials.Credentials:
        if self.key_file:
            try:
                credentials: google_credentials.Credentials = (
                    service_account.Credentials.from_service_account_file(
                        self.key_file, scopes=[SCOPE]))
                return credentials
            except (OSError, ValueError, KeyError) as exc:
                raise self._refusal(
                    f"cannot read the service-account key file {self.key_file!r} named by "
                    f"{self.cfg.credentials_env} ({type(exc).__name__})") from exc
        credentials, _project = google.auth.default(scopes=[SCOPE])
        return credentials

    async def _blocking(self, fn: Callable[[], T]) -> T:
        try:
            return await self._pool.run(TOKEN_TIMEOUT, fn)
        except TimeoutError as exc:
            raise ProviderError("timeout", f"provider {self.provider!r}: no Google access token "
                                f"within {TOKEN_TIMEOUT:g} s") from exc
        except RefreshError as exc:
            # args[0] is Google's `error: error_description`; the rest is the raw answer.
            detail = str(exc.args[0]) if exc.args else type(exc).__name__
            raise self._refusal(f"the token endpoint refused the grant ({detail[:300]}); "
                                f"check the key in {self.cfg.credentials_env}") from exc
        except TransportError as exc:
            raise ProviderError("connect", f"provider {self.provider!r}: cannot reach the "
                                f"Google token endpoint ({type(exc).__name__})") from exc
        except DefaultCredentialsError as exc:
            raise self._refusal(f"no Google credentials: set {self.cfg.credentials_env} to a "
                                "service-account key file, or configure Application Default "
                                "Credentials") from exc

    def _refusal(self, reason: str) -> ProviderError:
        return ProviderError("upstream_auth", f"provider {self.provider!r}: {reason}")

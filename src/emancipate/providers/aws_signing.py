"""AWS credentials and Signature Version 4, with botocore.

Credentials come from the provider's named environment variables when it gives them
(`access_key_id_env` / `secret_access_key_env` / `session_token_env`), otherwise from the
standard chain botocore walks for the CLI and the SDKs (environment, the shared config and
credentials files and `profile`, web identity, SSO, the container and instance metadata
endpoints), resolved on first use. Temporary credentials are refreshed by botocore before they
expire.

The chain's links do blocking I/O (files, metadata endpoints, STS): they run in a daemon
thread bounded by `CREDENTIALS_TIMEOUT` (`auth/blocking.py` says why not `asyncio.to_thread`),
never on the event loop. Static credentials are read once and cost nothing per request.

Errors, all `ProviderError("upstream_auth")` (the executor fails over, never retries): no
credentials found, a profile that does not exist, a link of the chain that failed. A chain
that takes longer than the bound is `timeout`. Messages never contain a key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError

from emancipate.auth.blocking import DaemonPool
from emancipate.config import BedrockProvider
from emancipate.providers.base import ProviderError
from emancipate.providers.http import read_secret

SERVICE = "bedrock"  # the signing name of bedrock-runtime
# Instance metadata answers within botocore's 1 s timeout or not at all; STS (web identity,
# assume-role) is one round trip: 20 s leaves room for both without letting a request hang.
CREDENTIALS_TIMEOUT = 20.0


class AwsSigner:
    """The credentials of one provider, and the SigV4 headers of each request."""

    def __init__(self, provider: str, cfg: BedrockProvider) -> None:
        self.provider = provider
        self.cfg = cfg
        self.region = cfg.region
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()
        self._pool = DaemonPool(size=1, name=f"aws-credentials-{provider}")
        if cfg.access_key_id_env and cfg.secret_access_key_env:
            key, secret = read_secret(cfg.access_key_id_env), read_secret(
                cfg.secret_access_key_env)
            if key and secret:
                self._credentials = Credentials(
                    key, secret, read_secret(cfg.session_token_env), method="env-names")

    async def headers_for(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """`headers` plus `X-Amz-Date`, `Authorization` (and `X-Amz-Security-Token`) for a
        POST of `body` to `url` (percent-encoded as it will be sent)."""
        frozen = await self._frozen()
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    async def _frozen(self) -> ReadOnlyCredentials:
        credentials = self._credentials
        if credentials is None:
            async with self._lock:
                credentials = self._credentials
                if credentials is None:
                    credentials = self._credentials = await self._blocking(self._resolve)
        if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
            return await self._blocking(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    def _resolve(self) -> Credentials:
        """The standard chain (runs in the daemon thread)."""
        if self.cfg.access_key_id_env:
            raise self._refusal(f"the environment variables {self.cfg.access_key_id_env} and "
                                f"{self.cfg.secret_access_key_env} must both be set")
        session = botocore.session.Session(profile=self.cfg.profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise self._refusal("no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, a profile, or a role")
        return credentials

    async def _blocking(self, fn: Any) -> Any:
        try:
            return await self._pool.run(CREDENTIALS_TIMEOUT, fn)
        except TimeoutError as exc:
            raise ProviderError("timeout", f"provider {self.provider!r}: the AWS credential "
                                f"chain took longer than {CREDENTIALS_TIMEOUT:g} s") from exc
        except BotoCoreError as exc:
            # botocore's messages name profiles, files and roles, never a secret.
            raise self._refusal(f"{type(exc).__name__}: {exc}") from exc

    def _refusal(self, reason: str) -> ProviderError:
        return ProviderError("upstream_auth",
                             f"provider {self.provider!r}: cannot sign for AWS: {reason}")

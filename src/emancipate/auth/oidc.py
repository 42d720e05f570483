"""Dashboard log-in through an OpenID Connect provider: authorization code flow with PKCE.

    GET /admin/oidc/login     -> 302 to the provider, with state, nonce and an S256 challenge;
                                 the three are kept in a short-lived signed cookie
    GET /admin/oidc/callback  -> the code is exchanged (with the PKCE verifier) for an ID
                                 token, whose signature (the provider's JWKS), issuer,
                                 audience, expiry and nonce are checked; its `role_claim` is
                                 mapped to a role; the answer is a 303 to the dashboard with a
                                 session token in the URL fragment (never sent to a server)

A session token is a JWT signed (HS256) with the key in ``auth.oidc.session_secret_env``, the
same on every replica, so any replica accepts it; it names the user and the role and expires
after ``session_ttl``. The dashboard keeps it in ``sessionStorage`` and sends it as a Bearer
token, exactly like an admin key: the admin guard checks its role. There is no server-side
session store, so a session cannot be revoked before it expires; keep ``session_ttl`` short.

Exceptions: `OIDCError(status, message)` for every refusal, its message safe to show.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt

from emancipate.auth.admins import ROLES, AdminInfo, rank
from emancipate.auth.config import OIDCConfig, Role

SESSION_AUDIENCE = "emancipate-dashboard"
SESSION_ISSUER = "emancipate"
FLOW_SECONDS = 600  # how long a user may take at the provider between login and callback
DISCOVERY_TTL = 3600.0  # seconds the discovery document and JWKS are reused
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
MIN_SECRET = 32
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OIDCError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Flow:
    """What the login step hands to the callback, through the signed cookie."""

    state: str
    nonce: str
    verifier: str


def challenge_for(verifier: str) -> str:
    """The PKCE S256 challenge: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OIDCLogin:
    """One per process: the provider's metadata (cached), the flow and the sessions."""

    def __init__(self, cfg: OIDCConfig, secret: str, client_secret: str | None) -> None:
        self.cfg = cfg
        self._secret = secret
        self._client_secret = client_secret
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    @classmethod
    def from_config(cls, cfg: OIDCConfig) -> OIDCLogin:
        """Read the secrets once; ConfigError naming the key when one is missing or short."""
        from emancipate.config import ConfigError

        secret = os.environ.get(cfg.session_secret_env, "")
        if len(secret) < MIN_SECRET:
            raise ConfigError("<config>", "auth.oidc.session_secret_env",
                              f"set {cfg.session_secret_env} to a random string of at least "
                              f"{MIN_SECRET} characters (the same on every replica)")
        client_secret = None
        if cfg.client_secret_env:
            client_secret = os.environ.get(cfg.client_secret_env)
            if not client_secret:
                raise ConfigError("<config>", "auth.oidc.client_secret_env",
                                  f"{cfg.client_secret_env} is not set")
        return cls(cfg, secret, client_secret)

    # --- the flow ----------------------------------------------------------------------------

    async def start(self) -> tuple[str, str]:
        """The provider's authorization URL and the signed cookie holding the flow."""
        meta = await self.metadata()
        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24),
                    secrets.token_urlsafe(48))
        query = urlencode({
            "response_type": "code", "client_id": self.cfg.client_id,
            "redirect_uri": self.cfg.redirect_url, "scope": " ".join(self.cfg.scopes),
            "state": flow.state, "nonce": flow.nonce,
            "code_challenge": challenge_for(flow.verifier), "code_challenge_method": "S256",
        })
        cookie = jwt.encode({"state": flow.state, "nonce": flow.nonce, "v": flow.verifier,
                             "exp": int(time.time()) + FLOW_SECONDS, "aud": "oidc-flow"},
                            self._secret, algorithm="HS256")
        return f"{meta['authorization_endpoint']}?{query}", cookie

    async def finish(self, cookie: str | None, state: str | None, code: str | None
                     ) -> tuple[str, AdminInfo]:
        """The session token and identity for a callback; OIDCError when anything is off."""
        flow = self._flow(cookie)
        if not state or not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise OIDCError(400, "The log-in answer does not match the log-in this browser "
                            "started (state differs); start again from the dashboard.")
        if not code:
            raise OIDCError(400, "The provider sent no authorization code; start again.")
        claims = await self._id_token(await self._exchange(code, flow.verifier), flow.nonce)
        role = self.role_for(claims)
        name = str(claims.get("email") or claims.get("name") or claims["sub"])
        now = int(time.time())
        token = jwt.encode({"sub": str(claims["sub"]), "name": name, "role": role,
                            "iat": now, "exp": now + int(self.cfg.session_ttl),
                            "aud": SESSION_AUDIENCE, "iss": SESSION_ISSUER},
                           self._secret, algorithm="HS256")
        return token, AdminInfo(id="oidc:" + str(claims["sub"]), name=name, role=role,
                                hint="", created_at=None)

    def role_for(self, claims: dict[str, Any]) -> Role:
        """The highest role the claim's values map to, else `default_role`; 403 otherwise."""
        value = claims.get(self.cfg.role_claim)
        values = value if isinstance(value, list) else [value] if value is not None else []
        found = [self.cfg.roles[v] for v in values if isinstance(v, str) and v in self.cfg.roles]
        if found:
            return max(found, key=rank)
        if self.cfg.default_role is not None:
            return self.cfg.default_role
        raise OIDCError(403, f"Your account has no role on this gateway (its "
                        f"'{self.cfg.role_claim}' claim matches none of auth.oidc.roles); "
                        "ask an admin.")

    # --- sessions ----------------------------------------------------------------------------

    def session(self, token: str) -> AdminInfo | None:
        """The identity a session token carries, or None when it is not a valid one."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"],
                                audience=SESSION_AUDIENCE, issuer=SESSION_ISSUER,
                                options={"require": ["exp", "sub", "role"]})
        except jwt.PyJWTError:
            return None
        if claims["role"] not in ROLES:
            return None
        return AdminInfo(id="oidc:" + str(claims["sub"]), name=str(claims.get("name", "")),
                         role=claims["role"], hint="", created_at=None)

    # --- talking to the provider -------------------------------------------------------------

    def _flow(self, cookie: str | None) -> Flow:
        try:
            data = jwt.decode(cookie or "", self._secret, algorithms=["HS256"],
                              audience="oidc-flow", options={"require": ["exp"]})
        except jwt.PyJWTError:
            raise OIDCError(400, "This log-in has expired or was not started in this browser; "
                            "start again from the dashboard.") from None
        return Flow(data["state"], data["nonce"], data["v"])

    async def metadata(self) -> dict[str, Any]:
        if self._meta is None or self._meta[0] < time.monotonic():
            url = self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
            meta = await _get_json(url)
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(field), str):
                    raise OIDCError(502, f"The OIDC provider's discovery document has no "
                                    f"{field}.")
            self._meta = (time.monotonic() + DISCOVERY_TTL, meta)
        return self._meta[1]

    async def _exchange(self, code: str, verifier: str) -> str:
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.cfg.redirect_url, "client_id": self.cfg.client_id,
                "code_verifier": verifier}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        try:
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, \
                    http.post(meta["token_endpoint"], data=form) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OIDCError(502, f"The OIDC provider's token endpoint failed "
                            f"({exc.__class__.__name__}).") from None
        if status != 200 or not isinstance(body, dict) or "id_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            raise OIDCError(502, f"The OIDC provider refused the code (HTTP {status}, "
                            f"{error or 'no id_token'}); start again.")
        return str(body["id_token"])

    async def _id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = await self._key(kid)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=ID_TOKEN_ALGORITHMS, audience=self.cfg.client_id,
                issuer=self.cfg.issuer, options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError as exc:
            raise OIDCError(401, f"The ID token is not valid ({exc}).") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OIDCError(401, "The ID token was not issued for this log-in (nonce differs).")
        return claims

    async def _key(self, kid: str | None) -> Any:
        for refresh in (False, True):  # a new kid: the provider rotated keys, read again
            if refresh or self._jwks is None or self._jwks[0] < time.monotonic():
                meta = await self.metadata()
                self._jwks = (time.monotonic() + DISCOVERY_TTL, await _get_json(meta["jwks_uri"]))
            for jwk in self._jwks[1].get("keys", []):
                if kid is None or jwk.get("kid") == kid:
                    return jwt.PyJWK(jwk).key
        raise OIDCError(401, "The ID token is signed with a key the provider does not publish.")


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(url) as resp:
            if resp.status != 200:
                raise OIDCError(502, f"The OIDC provider answered HTTP {resp.status} for {url}.")
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OIDCError(502, f"The OIDC provider is unreachable ({exc.__class__.__name__}) at "
                        f"{url}.") from None
    if not isinstance(body, dict):
        raise OIDCError(502, f"The OIDC provider's answer at {url} is not a JSON object.")
    return body

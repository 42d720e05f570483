"""A small OpenID Connect provider for tests: discovery, authorize, token, JWKS, on loopback.

It signs in one configured user without a form (the browser, or the test's HTTP client, is
redirected straight back with a code), and enforces what a real provider enforces on the
client: a registered client id and redirect URI, PKCE with S256 (the verifier must hash to the
challenge sent at authorize), one use per code, and the client secret when one is set. ID
tokens are RS256, signed by a key generated at start, with the nonce the client sent.

    with OIDCProvider(client_id="gw", redirect_uri=url, user={"sub": "u1",
                      "email": "ana@example.com", "groups": ["ops"]}) as idp:
        idp.issuer  # http://127.0.0.1:<port>
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class OIDCProvider:
    def __init__(self, client_id: str, redirect_uri: str, user: dict[str, Any],
                 client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.client_secret = client_secret
        self.user = user
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k-" + secrets.token_hex(4)
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []  # what the gateway sent, for asserts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OIDCProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def id_token(self, nonce: str, **override: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": nonce, **self.user, **override}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def _jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def _authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if q.get("client_id") != self.client_id or q.get("redirect_uri") != self.redirect_uri:
            return 400, {}, {"error": "invalid_client"}
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" \
                or not q.get("code_challenge"):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256"}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce", ""),
                            "redirect_uri": q["redirect_uri"]}
        location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        return 302, {"Location": location}, None

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)  # one use per code
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {}, {"error": "invalid_grant"}
        if form.get("client_id") != self.client_id or form.get("redirect_uri") != \
                grant["redirect_uri"]:
            return 400, {}, {"error": "invalid_client"}
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            return 401, {}, {"error": "invalid_client"}
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return 400, {}, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        return 200, {}, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                         "expires_in": 300, "id_token": self.id_token(grant["nonce"])}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    base = provider.issuer
                    self._answer(200, {}, {
                        "issuer": base, "authorization_endpoint": base + "/authorize",
                        "token_endpoint": base + "/token", "jwks_uri": base + "/jwks",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                        "id_token_signing_alg_values_supported": ["RS256"]})
                elif url.path == "/jwks":
                    self._answer(200, {}, provider._jwks())
                elif url.path == "/authorize":
                    self._answer(*provider._authorize(q))
                else:
                    self._answer(404, {}, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path == "/token":
                    self._answer(*provider._token(form))
                else:
                    self._answer(404, {}, {"error": "not_found"})

        return Handler

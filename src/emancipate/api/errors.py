"""The one rendering of an `OpenAIError` on the Starlette routes.

`render` is the app's exception handler for `OpenAIError`: a route raises, the client gets
the error in its API's shape. Requests of Anthropic's API (a path under `/v1/messages`, or an
`anthropic-version` header, which every Anthropic SDK sends) get Anthropic's envelope; all
others OpenAI's. The hot endpoints render through their `Wire.error` (`api/wire.py`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emancipate.protocol import OpenAIError


def render(request: Request, exc: Exception) -> Response:
    """`exc` (an `OpenAIError`) as the JSON error of the request's API."""
    assert isinstance(exc, OpenAIError)
    if request.url.path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        from emancipate.api.messages import MESSAGES

        status, body = MESSAGES.error(exc)
        return JSONResponse(body, status_code=status, headers=exc.headers)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


__all__ = ["render"]

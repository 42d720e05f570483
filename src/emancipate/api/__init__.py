"""The HTTP edge: OpenAI's wire protocol in, OpenAI-shaped answers and errors out."""

from emancipate.api.app import create_app

__all__ = ["create_app"]

"""emancipate: a self-hosted, OpenAI-compatible AI gateway that keeps an organisation
independent of any single model vendor."""

__version__ = "0.1.0"

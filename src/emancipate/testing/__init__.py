"""Test and benchmark harness: simulated vendor servers with fault injection.

Vendors cannot be reached from tests, so resilience is proven against real HTTP servers on
loopback that speak each vendor's wire protocol and fail on command.

    with SimulatedVendor("anthropic", name="claude", api_key="k") as claude:
        claude.inject(RateLimit(retry_after=0.1), times=1)
        ...  # point a provider at claude.url
"""

from emancipate.testing.azure_wire import AzureWire, EntraWire, ManagedIdentityWire, TokenBook
from emancipate.testing.bedrock_wire import BedrockWire
from emancipate.testing.faults import (
    CutStream,
    ErrorEvent,
    Fault,
    GarbageJSON,
    HangBeforeHeaders,
    HangMidStream,
    HugeBody,
    RateLimit,
    Reset,
    SlowTokens,
    Status,
)
from emancipate.testing.gemini_wire import BLOCK_PROMPT, UNSAFE_ANSWER, GeminiWire
from emancipate.testing.google_oauth_wire import GoogleTokenWire
from emancipate.testing.openai_wire import embedding_vector
from emancipate.testing.vendors import ReceivedRequest, SimulatedVendor

__all__ = [
    "BLOCK_PROMPT",
    "UNSAFE_ANSWER",
    "AzureWire",
    "BedrockWire",
    "CutStream",
    "EntraWire",
    "ErrorEvent",
    "Fault",
    "GarbageJSON",
    "GeminiWire",
    "GoogleTokenWire",
    "HangBeforeHeaders",
    "HangMidStream",
    "HugeBody",
    "ManagedIdentityWire",
    "RateLimit",
    "ReceivedRequest",
    "Reset",
    "SimulatedVendor",
    "SlowTokens",
    "Status",
    "TokenBook",
    "embedding_vector",
]

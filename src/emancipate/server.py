"""Run the gateway under uvicorn (uvloop + httptools), with a graceful SIGTERM shutdown.

The server stack was chosen by measurement: see docs/architecture.md, "HTTP stack, measured".
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from emancipate.api import create_app
from emancipate.config import GatewayConfig
from emancipate.gateway import Gateway


def run(cfg: GatewayConfig, host: str | None = None, port: int | None = None) -> None:
    logging.basicConfig(
        level=cfg.server.log_level.upper(),
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s",'
               '"message":"%(message)s"}',
    )
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:  # before the stages are built: auth-off is checked against the real host
        cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update=overrides)})
    # Background threads (the ledger writer) hold the GIL for at most this long before the event
    # loop gets it back: 5 ms by default, which showed as a 5-10 ms p99 on every request that
    # met a ledger flush. 0.5 ms keeps the loop's stalls below a millisecond.
    sys.setswitchinterval(0.0005)
    gateway = Gateway(cfg)
    uvicorn.run(
        create_app(gateway),
        host=cfg.server.host,
        port=cfg.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=cfg.server.log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        # No X-Forwarded-* rewriting on every request (the gateway does not use the client
        # address); put a reverse proxy's own header handling in front if one is needed.
        proxy_headers=False,
    )

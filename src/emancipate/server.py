"""Run the gateway under uvicorn (uvloop + httptools), with a graceful SIGTERM shutdown.

The server stack was chosen by measurement: see docs/architecture.md, "HTTP stack, measured".
"""

from __future__ import annotations

import logging
import resource
import sys

import uvicorn

from emancipate.api import create_app
from emancipate.api.connections import ConnectionLimits, protocol_for
from emancipate.config import GatewayConfig, resolve_config
from emancipate.gateway import Gateway

log = logging.getLogger("emancipate.server")


def run(cfg: GatewayConfig, host: str | None = None, port: int | None = None) -> None:
    logging.basicConfig(
        level=cfg.server.log_level.upper(),
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s",'
               '"message":"%(message)s"}',
    )
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:  # resolved again before any side effect: auth-off against the real host
        cfg = resolve_config(
            cfg.model_copy(update={"server": cfg.server.model_copy(update=overrides)}))
    # Background threads (the ledger writer) hold the GIL for at most this long before the event
    # loop gets it back: 5 ms by default, which showed as a 5-10 ms p99 on every request that
    # met a ledger flush. 0.5 ms keeps the loop's stalls below a millisecond.
    sys.setswitchinterval(0.0005)
    gateway = Gateway(cfg)
    server = cfg.server
    _raise_file_limit(server.max_connections)
    limits = ConnectionLimits(server.header_timeout, server.body_timeout,
                              server.keep_alive_timeout, server.max_connections,
                              server.max_header_bytes)
    uvicorn.run(
        create_app(gateway),
        host=cfg.server.host,
        port=cfg.server.port,
        loop="uvloop",
        http=protocol_for(limits),  # uvicorn's httptools protocol, with connection deadlines
        timeout_keep_alive=max(1, round(server.keep_alive_timeout)),
        lifespan="on",
        access_log=False,
        log_level=cfg.server.log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        # No X-Forwarded-* rewriting on every request (the gateway does not use the client
        # address); put a reverse proxy's own header handling in front if one is needed.
        proxy_headers=False,
    )


# File descriptors besides client connections: upstream pools, the database, logs, spill files.
_SPARE_FILES = 1024


def _raise_file_limit(max_connections: int) -> None:
    """Make room for `server.max_connections` sockets: at the usual soft limit of 1,024 open
    files, accepting fails (and /healthz with it) long before the connection bound applies."""
    want = max_connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log.warning("open-file limit %d is below server.max_connections (%d) + %d: "
                        "lower server.max_connections or raise the hard limit (ulimit -Hn)",
                        new, max_connections, _SPARE_FILES)

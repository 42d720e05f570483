"""Run the gateway under uvicorn (uvloop + httptools), with a graceful SIGTERM shutdown."""

from __future__ import annotations

import logging

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
    gateway = Gateway(cfg)
    uvicorn.run(
        create_app(gateway),
        host=host or cfg.server.host,
        port=cfg.server.port if port is None else port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=cfg.server.log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
    )

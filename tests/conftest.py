from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_process import GatewayProcess


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways with a config dict; all are stopped at the end of the test."""
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None,
              wait_ready: bool = False) -> GatewayProcess:
        gw = GatewayProcess(config, tmp_path, env).start()
        started.append(gw)
        if wait_ready:
            gw.wait_ready()
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="session")
def embedded_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway on the embedded defaults (no config at all), shared by read-only tests."""
    gw = GatewayProcess(None, tmp_path_factory.mktemp("embedded"), env={"EMANCIPATE_CONFIG": ""})
    gw.start()
    gw.wait_ready()
    yield gw
    gw.stop()

"""Start a real gateway process on loopback for a test, with the config the test gives."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import sqlalchemy as sa
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess:
    """`emancipate serve` in a subprocess; its output goes to a log file tests can read."""

    def __init__(self, config: dict[str, Any] | None, workdir: Path,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        """`config=None` runs on the embedded defaults, exactly as `make run` does."""
        self.port = port or free_port()
        self.workdir = workdir
        self.config = config
        self.args = ["serve", "--port", str(self.port)]
        if config is not None:
            config.setdefault("server", {})
            config["server"].setdefault("database_url", f"sqlite:///{workdir / 'gateway.db'}")
            config["server"]["port"] = self.port
            # Tests of other stages run without keys unless they say otherwise (loopback only).
            config.setdefault("auth", {"enabled": False})
            self.config_path = workdir / f"gateway-{self.port}.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
            self.args += ["--config", str(self.config_path)]
        self.log_path = workdir / f"gateway-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> GatewayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emancipate", *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start-up:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start within {timeout}s:\n{self.log()}")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("gateway never became ready")

    def client(self, api_key: str = "unused", **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0,
                             timeout=kwargs.pop("timeout", 60), **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ledger_rows(database_url: str) -> dict[str, tuple[int, int]]:
    """Request id -> (rows with that id, status): read after the gateways flushed (SIGTERM)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, count(*), max(status) FROM requests GROUP BY id")).all()
    finally:
        engine.dispose()
    return {rid: (int(n), int(status)) for rid, n, status in rows}


def start_all(gateways: list[GatewayProcess]) -> None:
    """Start replicas at once: the schema migration must be serialised between them."""
    errors: list[BaseException] = []

    def start(gw: GatewayProcess) -> None:
        try:
            gw.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(gw,)) for gw in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

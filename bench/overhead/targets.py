"""What the bench measures: the upstream directly, nginx (floor), emancipate, and the peers.

Each target knows how to install itself (idempotently, under the gitignored bench/.work/),
how to start on a loopback port, and which headers a client sends it. Peers are configured
as lean as their documentation allows, so that the ratios are never flattering by accident.

emancipate variants are rows of `EMANCIPATE_VARIANTS`: adding a row (e.g. with the guard or
the ledger off) is one entry with its config overrides.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from overhead.procs import GATEWAY_CORE
from overhead.upstream import MODEL, PACED_MODEL, UPSTREAM_KEY, completion_body

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
WORK = BENCH / ".work"
LITELLM_VERSION = os.environ.get("BENCH_LITELLM_VERSION", "1.106.2")
PORTKEY_VERSION = os.environ.get("BENCH_PORTKEY_VERSION", "1.15.2")
# Portkey 1.15.2 declares @hono/node-server ^1.3.3; from 1.14.1 on, that package keeps a fetch
# response's immutable headers and every streamed answer fails with "TypeError: immutable"
# (Portkey issue 1389). 1.14.0 is the last version with which Portkey streams.
HONO_NODE_SERVER_VERSION = "1.14.0"
CHAT_PATH = "/v1/chat/completions"

Log = Callable[[str], None]


@dataclass
class Ctx:
    """What a target needs to start: where to write, where the upstream is."""

    workdir: Path
    upstream_port: int
    log: Log

    @property
    def upstream_base(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/v1"


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class Target:
    """A server under test. `kind`: baseline, emancipate or peer."""

    name = ""
    label = ""
    kind = "peer"
    streams = True
    core: int | None = GATEWAY_CORE
    startup_timeout = 180.0

    def install(self, log: Log) -> None:
        """Make sure the software is there (idempotent)."""

    def launch(self, ctx: Ctx, port: int) -> Launch:
        raise NotImplementedError

    def headers(self, ctx: Ctx) -> dict[str, str]:
        """Client headers: the upstream key as a Bearer token, as an app would send."""
        return {"Authorization": f"Bearer {UPSTREAM_KEY}"}

    def version(self) -> str:
        return ""


def _run(argv: list[str], log: Log, env: dict[str, str] | None = None,
         cwd: Path | None = None, timeout: float = 900) -> None:
    log(f"$ {' '.join(argv)}")
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{tail}")


def ensure_apt(binaries: dict[str, str], log: Log) -> None:
    """Install the Debian packages whose binary is missing (`binary -> package`)."""
    def present(binary: str) -> bool:
        return shutil.which(binary) is not None or Path("/usr/sbin", binary).exists()

    missing = sorted({pkg for binary, pkg in binaries.items() if not present(binary)})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run([*sudo, "apt-get", "update", "-qq"], log, env)
    _run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], log, env)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Direct(Target):
    """The upstream itself: the baseline every 'added' figure is measured from."""

    name, label, kind = "direct", "upstream (direct)", "baseline"

    def launch(self, ctx: Ctx, port: int) -> Launch:
        raise RuntimeError("the direct target is the shared upstream; nothing to launch")


class Nginx(Target):
    """nginx answering the same fixed body: the floor of a native server on the gateway core."""

    name, label, kind = "nginx", "nginx (floor)", "baseline"
    streams = False

    def install(self, log: Log) -> None:
        ensure_apt({"nginx": "nginx"}, log)

    def launch(self, ctx: Ctx, port: int) -> Launch:
        body = completion_body().decode()
        if any(c in body for c in "'\\$"):
            raise ValueError("the fixed body must not hold quotes, backslashes or $ for nginx")
        d = ctx.workdir / "nginx"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
""")
        return Launch([nginx_binary(), "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)])

    def version(self) -> str:
        done = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
        return done.stderr.strip().split("/")[-1]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class EmancipateVariant:
    """One emancipate row: config overrides on top of the bench's base config.

    `virtual_key`: create a virtual key with the gateway's own CLI and send it (auth on).
    """

    name: str
    label: str
    overrides: dict[str, Any]
    virtual_key: bool = False


# The rows. The issue asks for the full configuration (auth with a virtual key created by the
# gateway's own CLI, leak guard on, policy on, ledger on: the defaults of a config file) and a
# second row with guard and ledger off (auth still on), to show what those stages cost.
EMANCIPATE_VARIANTS: list[EmancipateVariant] = [
    EmancipateVariant("emancipate", "emancipate (full)", {}, virtual_key=True),
    EmancipateVariant("emancipate-lean", "emancipate (guard, ledger off)", {
        "guard": {"enabled": False}, "ledger": {"enabled": False},
    }, virtual_key=True),
]

# Rows run only when named in `--only`: A/B measurements that need not be in every run. The
# ledger's crash journal (issue 17) is on (`write`) in the full row; these switch it off, or
# to `fsync`, all else equal.
OPTIONAL_VARIANTS: list[EmancipateVariant] = [
    EmancipateVariant("emancipate-journal-off", "emancipate (journal off)",
                      {"ledger": {"journal": "off"}}, virtual_key=True),
    EmancipateVariant("emancipate-journal-fsync", "emancipate (journal fsync)",
                      {"ledger": {"journal": "fsync"}}, virtual_key=True),
    # The response cache's hit path (issue 15): every request of the load is the same, so
    # all but the first are answered from the cache (`sampled`: the bench's temperature 0.2).
    EmancipateVariant("emancipate-cache", "emancipate (cache hits)",
                      {"routes": {MODEL: {"cache": {"ttl": "1h", "sampled": True}}}},
                      virtual_key=True),
]


class Emancipate(Target):
    """`emancipate serve` from this checkout, with the main virtual environment's Python."""

    kind = "emancipate"
    startup_timeout = 60.0

    def __init__(self, variant: EmancipateVariant) -> None:
        self.variant = variant
        self.name, self.label = variant.name, variant.label
        self.api_key: str | None = None

    def config(self, ctx: Ctx, port: int) -> dict[str, Any]:
        d = ctx.workdir / self.name
        base: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": port,
                       "database_url": f"sqlite:///{d / 'bench.db'}"},
            "providers": {"upstream": {
                "kind": "openai-compatible", "base_url": ctx.upstream_base,
                "api_key_env": "BENCH_UPSTREAM_KEY", "ownership": "external", "vendor": "bench",
            }},
            "routes": {m: {"targets": [{"provider": "upstream", "model": m}]}
                       for m in (MODEL, PACED_MODEL)},
        }
        return _merge(base, self.variant.overrides)

    def launch(self, ctx: Ctx, port: int) -> Launch:
        d = ctx.workdir / self.name
        d.mkdir(parents=True, exist_ok=True)
        path = d / "config.yaml"
        path.write_text(yaml.safe_dump(self.config(ctx, port), sort_keys=False))
        env = {"BENCH_UPSTREAM_KEY": UPSTREAM_KEY, "EMANCIPATE_CONFIG": ""}
        if self.variant.virtual_key:
            self.api_key = self._create_key(path, env, ctx.log)
        return Launch([sys.executable, "-m", "emancipate", "serve", "--config", str(path)],
                      env, d)

    def _create_key(self, config: Path, env: dict[str, str], log: Log) -> str:
        """A virtual key from the gateway's own CLI (`emancipate keys create --json`)."""
        argv = [sys.executable, "-m", "emancipate", "keys", "create", "--config", str(config),
                "--name", "bench", "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, **env})
        try:
            return str(json.loads(done.stdout)["key"])
        except (ValueError, KeyError, TypeError):
            raise RuntimeError(f"could not create a virtual key: {' '.join(argv)}\n"
                               f"{done.stdout}{done.stderr}") from None

    def headers(self, ctx: Ctx) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key or 'unused'}"}

    def version(self) -> str:
        try:
            from importlib.metadata import version
            return version("emancipate")
        except Exception:  # noqa: BLE001 - only a label
            return ""


class LiteLLM(Target):
    """LiteLLM proxy from PyPI in its own venv: no DB, no callbacks, one worker, ERROR logs."""

    name, label = "litellm", "LiteLLM proxy"
    venv = WORK / "litellm"
    master_key = "sk-bench-" + secrets.token_hex(24)

    def install(self, log: Log) -> None:
        py = self.venv / "bin" / "python"
        if py.exists() and self.version() == LITELLM_VERSION:
            return
        log(f"installing litellm[proxy]=={LITELLM_VERSION} into {self.venv} (once)")
        _run([sys.executable, "-m", "venv", "--clear", str(self.venv)], log)
        _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"litellm[proxy]=={LITELLM_VERSION}"], log)

    def launch(self, ctx: Ctx, port: int) -> Launch:
        d = ctx.workdir / self.name
        d.mkdir(parents=True, exist_ok=True)
        cfg = {
            "model_list": [
                {"model_name": m, "litellm_params": {
                    "model": f"openai/{m}", "api_base": ctx.upstream_base, "api_key": UPSTREAM_KEY,
                }} for m in (MODEL, PACED_MODEL)
            ],
            # Lean, per the proxy's production guide: no database (so no key lookups and no
            # spend writes), no callbacks, no debug logging. A master key is required to start.
            "general_settings": {"master_key": self.master_key, "disable_spend_logs": True,
                                 "disable_error_logs": True},
            "litellm_settings": {"set_verbose": False, "request_timeout": 600},
        }
        path = d / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        env = {
            "LITELLM_LOG": "ERROR",  # "turn off FastAPI's default info logs"
            "LITELLM_MODE": "PRODUCTION",  # no .env loading
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch at start-up
            "DISABLE_ADMIN_UI": "True",
        }
        return Launch([str(self.venv / "bin" / "litellm"), "--config", str(path),
                       "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"], env, d)

    def headers(self, ctx: Ctx) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def version(self) -> str:
        py = self.venv / "bin" / "python"
        if not py.exists():
            return ""
        done = subprocess.run(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, check=False)
        return done.stdout.strip()


class Portkey(Target):
    """Portkey's open-source gateway from npm, on the machine's Node.js, headless.

    Requests name the provider (`openai`) and the custom host (our upstream) in Portkey's
    headers; the Authorization header is forwarded to the upstream, as with OpenAI.
    """

    name, label = "portkey", "Portkey gateway"
    dir = WORK / "portkey"
    startup_timeout = 60.0

    @property
    def package(self) -> Path:
        return self.dir / "node_modules" / "@portkey-ai" / "gateway"

    def install(self, log: Log) -> None:
        ensure_apt({"node": "nodejs", "npm": "npm"}, log)
        if (self._gateway_version(), self._hono_version()) == (PORTKEY_VERSION,
                                                               HONO_NODE_SERVER_VERSION):
            return
        log(f"installing @portkey-ai/gateway@{PORTKEY_VERSION} into {self.dir} (once)")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "package.json").write_text(json.dumps({
            "name": "bench-portkey", "private": True,
            "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
            "overrides": {"@hono/node-server": HONO_NODE_SERVER_VERSION},
        }, indent=1) + "\n")
        _run(["npm", "install", "--no-audit", "--no-fund"], log, cwd=self.dir)

    def _hono_version(self) -> str:
        pkg = self.dir / "node_modules" / "@hono" / "node-server" / "package.json"
        try:
            return str(json.loads(pkg.read_text())["version"])
        except (OSError, ValueError, KeyError):
            return ""

    def launch(self, ctx: Ctx, port: int) -> Launch:
        shim = Path(__file__).with_name("loopback.cjs")
        return Launch(["node", "--require", str(shim),
                       str(self.package / "build" / "start-server.js"),
                       f"--port={port}", "--headless"],
                      {"NODE_ENV": "production"}, self.dir)

    def headers(self, ctx: Ctx) -> dict[str, str]:
        return {**super().headers(ctx), "x-portkey-provider": "openai",
                "x-portkey-custom-host": ctx.upstream_base}

    def _gateway_version(self) -> str:
        try:
            return str(json.loads((self.package / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError):
            return ""

    def version(self) -> str:
        return f"{self._gateway_version()} (@hono/node-server {self._hono_version()})"


def all_targets(optional: bool = False) -> list[Target]:
    """Every target, in the order they run and appear in the table; `optional` adds the
    rows of `OPTIONAL_VARIANTS`."""
    extra = [Emancipate(v) for v in OPTIONAL_VARIANTS] if optional else []
    return [Direct(), Nginx(), *(Emancipate(v) for v in EMANCIPATE_VARIANTS), *extra, LiteLLM(),
            Portkey()]

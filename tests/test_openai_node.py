"""The official `openai` npm package from Node against a started gateway (issue 13): one
Responses request, one chat stream, one `responses.stream()`.

The package is installed by this test into tests/node/node_modules (git-ignored), at the
version tests/node/package.json pins, once: a later run finds it and skips npm. Node 20 and
npm must be on the machine, and the npm registry reachable for the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_env import ApiEnv, api_env

NODE_DIR = Path(__file__).parent / "node"


def _installed_version() -> str | None:
    manifest = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="module")
def node_client() -> Path:
    """tests/node with the pinned `openai` package installed (idempotent)."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is needed: install Node.js 20 or later"
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"]
    if _installed_version() != wanted:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                        "--prefix", str(NODE_DIR)], check=True, timeout=300)
    assert _installed_version() == wanted
    return NODE_DIR


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    with api_env(tmp_path_factory.mktemp("node")) as e:
        yield e


def test_the_openai_npm_package_speaks_responses_and_chat_streams(
        node_client: Path, env: ApiEnv) -> None:
    run = subprocess.run(
        ["node", str(node_client / "responses_and_chat.mjs")], capture_output=True, text=True,
        timeout=120, env={**os.environ, "GATEWAY_URL": env.gw.url + "/v1",
                          "GATEWAY_KEY": env.key_a, "GATEWAY_MODEL": "gpt"})
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    response = out["response"]
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["id"].startswith("resp_")
    assert response["text"] == "primary says: hello from node"
    assert response["usage"]["total_tokens"] > 0
    assert out["chat"]["text"] == "primary says: stream to node" and out["chat"]["chunks"] > 2
    assert out["events"][0] == "response.created" and out["events"][-1] == "response.completed"
    assert "response.output_text.delta" in out["events"]
    assert out["final"] == "primary says: events to node"
    sent = env.bodies(env.primary)
    assert sent[0]["messages"] == [{"role": "system", "content": "Answer briefly."},
                                   {"role": "user", "content": "hello from node"}]
    assert [b.get("stream", False) for b in sent] == [False, True, True]

"""Broken configuration stops start-up with the file, the key path and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
providers:
  local: {kind: embedded}
  partner:
    kind: openai-compatible
    base_url: http://127.0.0.1:9/v1
    api_key_env: PARTNER_KEY
    ownership: external
    vendor: partner-inc
routes:
  default:
    strategy: fallback
    targets: [{provider: local, model: smollm2-135m-instruct}, {provider: partner, model: m}]
"""


TWO_SIDES = ("providers: {p: {kind: embedded}, x: {kind: openai-compatible, "
             "base_url: 'http://127.0.0.1:9/v1', ownership: external, vendor: vendor-inc}}\n")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emancipate", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GOOD)
    result = run_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "2 providers, 1 routes" in result.stdout
    assert "partner: openai-compatible, external, vendor partner-inc" in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "key", "reason"),
    [
        ("providers: {p: {kind: openai-compatible, ownership: external, vendor: v}}",
         "providers.p.base_url", "Field required"),
        ("providers: {p: {kind: telepathy}}", "providers.p", "kind must be one of"),
        ("providers: {p: {ownership: external}}", "providers.p", "missing `kind`"),
        ("providers: {p: {kind: embedded, colour: blue}}", "providers.p.colour", "unknown key"),
        ("providers: {p: {kind: openai-compatible, base_url: ftp://x, ownership: external, "
         "vendor: v}}", "providers.p.base_url", "http:// or https://"),
        ("providers: {p: {kind: embedded, ownership: maybe}}", "providers.p.ownership",
         "'in-house' or 'external'"),
        ("providers: {p: {kind: embedded}}\nroutes: {r: {targets: [{provider: q, model: m}]}}",
         "routes.r.targets.0.provider", "unknown provider 'q' (declared: p)"),
        ("providers: {p: {kind: embedded}}\nroutes: {r: {targets: []}}", "routes.r.targets",
         "at least 1 item"),
        ("providers: {p: {kind: embedded}}\nroutes: {r: {strategy: fastest, "
         "targets: [{provider: p, model: m}]}}", "routes.r.strategy", "Input should be"),
        ("providers: {p: {kind: embedded}}\nroutes: {r: {strategy: independence, "
         "targets: [{provider: p, model: m}]}}", "routes.r.strategy",
         "at least one in-house and one external"),
        # Cross-references (phase two, `resolve_config`): rejected by `config check` too.
        (TWO_SIDES + "routes: {r: {strategy: independence, targets: [{provider: p, model: m}, "
         "{provider: x, model: m}]}}", "routes.r.router", "needs a trained router file"),
        (TWO_SIDES + "routes: {r: {strategy: independence, router: /nonexistent/r.json, "
         "targets: [{provider: p, model: m}, {provider: x, model: m}]}}", "routes.r.router",
         "no such router file"),
        (TWO_SIDES + "routes: {r: {targets: [{provider: p, model: m}]}}\n"
         "policy: {rules: [{class: secret, vendor: ventor-inc, action: block}]}",
         "policy.rules.0.vendor", "no provider has vendor 'ventor-inc'"),
        (TWO_SIDES + "routes: {r: {targets: [{provider: p, model: m}]}}\n"
         "policy: {vendors: {ventor-inc: {}}}", "policy.vendors.ventor-inc",
         "no provider has vendor"),
        (TWO_SIDES + "routes: {r: {shadow_rate: 0.5, targets: [{provider: p, model: m}, "
         "{provider: x, model: m}]}}\nshadow: {judge: no-such-route}", "shadow.judge",
         "neither `exact` nor a route"),
        ("server: {host: 0.0.0.0}\nauth: {enabled: false}", "auth.enabled",
         "only on a loopback address"),
        ("server: {port: 99999}", "server.port", "less than or equal to 65535"),
        ("server: {cors: {allow_origins: ['https://app.example.com/chat']}}",
         "server.cors.allow_origins", "is not an origin"),
        ("server: {cors: {allow_origins: ['*'], allow_credentials: true}}", "server.cors",
         "list the origins"),
        ("serverr: {}", "serverr", "unknown key"),
        ("- just\n- a list", "", "top level must be a mapping"),
        ("providers: {p: {kind: embedded\n", "", "not valid YAML: line"),
    ],
)
def test_broken_config_names_file_key_and_reason(
    tmp_path: Path, yaml_text: str, key: str, reason: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml_text)
    for args in (("config", "check", str(path)), ("serve", "--config", str(path))):
        result = run_cli(*args)
        assert result.returncode == 2
        line = result.stderr.strip()
        assert line.startswith(f"emancipate: configuration error: {path}"), line
        assert f"{key}:" in line if key else True
        assert reason in line, line
        assert "Traceback" not in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("config", "check", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: cannot read the file" in result.stderr


def test_models_command_lists_routes(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GOOD)
    result = run_cli("models", "--config", str(path))
    assert result.returncode == 0
    assert "default\tfallback\tlocal/smollm2-135m-instruct (in-house), partner/m (external)" in (
        result.stdout
    )


def test_defaults_add_vendor_models_when_keys_are_set() -> None:
    from emancipate.config import default_config, parse_config

    bare = parse_config(default_config({}))
    assert set(bare.routes) == {"default", "in-house", "smollm2-135m-instruct"}
    assert bare.providers["embedded"].ownership == "in-house"
    full = parse_config(default_config({"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y"}))
    assert full.providers["openai"].ownership == "external"
    assert "gpt-4o-mini" in full.routes and "claude-sonnet-4-5" in full.routes
    assert full.routes["claude-sonnet-4-5"].targets[0].provider == "anthropic"

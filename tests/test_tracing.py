"""`tracing`: the settings from the YAML and the `OTEL_*` variables, validated at start-up."""

from __future__ import annotations

import pytest

from emancipate.config import ConfigError, TracingConfig, parse_config
from emancipate.tracing import OFF, OTelTracer, Tracer, TraceSettings


def _settings(env: dict[str, str], **tracing: object) -> TraceSettings:
    return TraceSettings.resolve(TracingConfig.model_validate(tracing), env)


def test_tracing_is_off_without_a_tracing_section_or_otel_variables() -> None:
    assert _settings({}).on is False
    assert Tracer.from_config(parse_config({})) is OFF


def test_an_otlp_endpoint_variable_turns_tracing_on_with_the_otel_defaults() -> None:
    settings = _settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert settings.on and settings.protocol == "http"
    assert settings.endpoint is None and settings.headers is None  # the exporter reads them
    assert settings.service_name == "emancipate" and settings.sample_ratio is None
    assert _settings({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}).on


@pytest.mark.parametrize("variable", [{"OTEL_SDK_DISABLED": "true"},
                                      {"OTEL_TRACES_EXPORTER": "none"}])
def test_the_standard_off_switches_win_over_an_endpoint_variable(
        variable: dict[str, str]) -> None:
    assert not _settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **variable}).on


def test_enabled_false_wins_over_the_environment() -> None:
    assert not _settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, enabled=False).on


def test_protocol_and_service_name_come_from_the_variables_unless_the_yaml_sets_them() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           "OTEL_SERVICE_NAME": "gw-eu"}
    from_env = _settings(env)
    assert (from_env.protocol, from_env.service_name) == ("grpc", "gw-eu")
    from_yaml = _settings(env, protocol="http", service_name="gw-us")
    assert (from_yaml.protocol, from_yaml.service_name) == ("http", "gw-us")
    traces_only = _settings({**env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"})
    assert traces_only.protocol == "http"


def test_an_otlp_protocol_the_gateway_cannot_export_stops_start_up_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError) as info:
        parse_config({}, "gw.yaml")
    assert info.value.source == "gw.yaml" and info.value.key == "tracing.protocol"
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in info.value.reason
    assert "'http/json'" in info.value.reason
    # tracing off: the variable is not read, nothing to refuse
    parse_config({"tracing": {"enabled": False}}, "gw.yaml")


def test_headers_env_reads_each_variable_and_an_unset_one_stops_start_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings({"COLLECTOR_KEY": "k-123"}, enabled=True, headers={"x-team": "gw"},
                         headers_env={"x-api-key": "COLLECTOR_KEY"})
    assert settings.headers == {"x-team": "gw", "x-api-key": "k-123"}
    monkeypatch.delenv("COLLECTOR_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_config({"tracing": {"enabled": True, "headers_env": {"x-api-key": "COLLECTOR_KEY"}}},
                     "gw.yaml")
    assert info.value.key == "tracing.headers_env.x-api-key"
    assert "COLLECTOR_KEY is not set" in info.value.reason
    assert "k-123" not in str(info.value)


@pytest.mark.parametrize(("tracing", "key", "fragment"), [
    ({"sample_ratio": 1.5}, "tracing.sample_ratio", "less than or equal to 1"),
    ({"endpoint": "collector:4318"}, "tracing.endpoint", "http:// or https://"),
    ({"protocol": "http/json"}, "tracing.protocol", "'http' or 'grpc'"),
    ({"propagate": "external"}, "tracing.propagate", "'all', 'in-house' or 'none'"),
    ({"capture": True}, "tracing.capture", "unknown key"),
])
def test_a_bad_tracing_key_fails_naming_it(tracing: dict[str, object], key: str,
                                           fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"tracing": tracing}, "gw.yaml")
    assert info.value.key == key
    assert fragment in info.value.reason


def test_tracing_on_builds_the_sdk_with_the_chosen_exporter() -> None:
    for protocol in ("http", "grpc"):
        cfg = parse_config({"tracing": {"enabled": True, "protocol": protocol,
                                        "endpoint": "http://127.0.0.1:9", "sample_ratio": 0.25}})
        tracer = Tracer.from_config(cfg)
        assert isinstance(tracer, OTelTracer) and tracer.on
        assert "0.25" in tracer.provider.sampler.get_description()
        tracer.shutdown()


def test_otel_traces_sampler_is_the_sampler_when_sample_ratio_is_unset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.3")
    cfg = parse_config({"tracing": {"enabled": True, "endpoint": "http://127.0.0.1:9"}})
    tracer = Tracer.from_config(cfg)
    assert isinstance(tracer, OTelTracer)
    description = tracer.provider.sampler.get_description()
    assert description.startswith("ParentBased") and "0.3" in description
    tracer.shutdown()

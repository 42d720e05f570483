"""Person names and postal addresses (guard.entities): opt-in, English and French, with the
policy redacting them. Loads the real spaCy pipelines once for the module (a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from emancipate.config import ConfigError, parse_config
from emancipate.context import ANONYMOUS, Target
from emancipate.guard import Guard, GuardConfig
from emancipate.guard.entities import EntityDetector, language_of
from emancipate.policy import Policy

OPENAI = Target("openai", "gpt-4o", "openai", "external")
LOCAL = Target("local", "smollm2", "in-house", "in-house")

EN = ("Please send the signed contract to John Smith at 1600 Pennsylvania Avenue NW, "
      "Washington, DC 20500 before Friday.")
FR = ("Merci d'envoyer le dossier à Jean-Pierre Martin, 12 rue de la Paix, 75002 Paris, "
      "avant vendredi.")


def _config(guard: dict[str, Any], policy: dict[str, Any] | None = None) -> Any:
    return parse_config({
        "providers": {
            "local": {"kind": "embedded"},
            "openai": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1",
                       "ownership": "external", "vendor": "openai"},
        },
        "guard": guard,
        "policy": policy or {},
    })


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_config(_config({"entities": {"enabled": True}}).guard)


def _found(guard: Guard, text: str) -> set[tuple[str, str]]:
    return {(f.detector, text[f.start:f.end]) for f in guard.scan(text)
            if f.detector in ("person_name", "postal_address")}


def test_names_and_addresses_are_off_by_default_and_spacy_is_never_imported() -> None:
    script = (
        "import sys\n"
        "from emancipate.guard import Guard, GuardConfig\n"
        "g = Guard.from_config(GuardConfig())\n"
        f"found = [f.detector for f in g.scan({EN!r})]\n"
        "print(g.entities is None, 'person_name' in found or 'postal_address' in found,"
        " 'spacy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_an_english_name_and_street_address_are_found(guard: Guard) -> None:
    assert _found(guard, EN) == {
        ("person_name", "John Smith"),
        ("postal_address", "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
    }


def test_a_french_name_and_adresse_are_found(guard: Guard) -> None:
    assert _found(guard, FR) == {
        ("person_name", "Jean-Pierre Martin"),
        ("postal_address", "12 rue de la Paix, 75002 Paris"),
    }


def test_a_british_address_with_a_flat_and_a_postcode_is_one_address(guard: Guard) -> None:
    text = "Ship it to Studio 07\nSophie Mall\nWest Lorraine\nTF5B 8EG please."
    assert _found(guard, text) == {
        ("postal_address", "Studio 07\nSophie Mall\nWest Lorraine\nTF5B 8EG")}


def test_titles_stay_outside_the_name_and_a_street_named_after_someone_is_an_address(
        guard: Guard) -> None:
    text = "Mme Sophie Lefèvre habite au 5 bis avenue Victor Hugo à Lyon depuis mars."
    assert _found(guard, text) == {
        ("person_name", "Sophie Lefèvre"),
        ("postal_address", "5 bis avenue Victor Hugo à Lyon"),
    }


@pytest.mark.parametrize("text", [
    "Our offices in Paris and Lyon work with Microsoft and Airbus on the new iPhone 15 case.",
    "Renault et Airbus ont annoncé leurs résultats à Toulouse et à Bordeaux.",
    "In 2020 Supreme Court judges met twice; we sell 3 cours Python and 2 Green Park tickets.",
    "The API returned 404 for SKU 1234 on 12 May; the CEO asked for a fix.",
])
def test_cities_companies_products_and_years_are_neither_names_nor_addresses(
        guard: Guard, text: str) -> None:
    assert _found(guard, text) == set()


def test_each_paragraph_is_read_in_its_own_language() -> None:
    assert language_of("Merci pour votre message, je vous rappelle demain.", ["en", "fr"],
                       "en") == "fr"
    assert language_of("Thanks for your message, I will call you back.", ["en", "fr"],
                       "fr") == "en"
    assert language_of("Paris Lyon 2024", ["en", "fr"], "fr") == "fr"  # no stop word: fallback


def test_a_switched_off_detector_reports_nothing_but_addresses_still_win_over_names(
        guard: Guard) -> None:
    assert guard.entities is not None
    only_addresses = EntityDetector(guard.entities.pipelines, 10_000,
                                    frozenset({"postal_address"}))
    assert {d for _, _, d in only_addresses.find(EN)} == {"postal_address"}
    only_names = EntityDetector(guard.entities.pipelines, 10_000, frozenset({"person_name"}))
    text = "Le colis est parti du 5 avenue Victor Hugo, 69002 Lyon."
    assert only_names.find(text) == []  # "Victor Hugo" is a street here, not a person


def test_the_recogniser_reads_only_the_last_max_chars_but_address_rules_read_everything(
        guard: Guard) -> None:
    assert guard.entities is not None
    short = EntityDetector(guard.entities.pipelines, 200)
    text = EN + " " + "The weather was fine and nothing else happened. " * 10
    found = {(d, text[s:e]) for s, e, d in short.find(text)}
    assert ("postal_address", "1600 Pennsylvania Avenue NW, Washington, DC 20500") in found
    assert not any(d == "person_name" for d, _ in found)


def test_a_personal_data_rule_redacts_names_and_addresses_for_external_targets(
        guard: Guard) -> None:
    policy = Policy.from_config(_config({"entities": {"enabled": True}}))
    body = {"model": "m", "messages": [{"role": "user", "content": EN}]}
    plan = policy.plan(body, guard.scan_request(body), [OPENAI, LOCAL], ANONYMOUS)
    sent = plan.body_for(OPENAI, body)["messages"][0]["content"]
    assert sent == ("Please send the signed contract to [NAME_1] at [ADDRESS_1] before Friday.")
    assert plan.body_for(LOCAL, body) is body
    restorer = plan.restorer_for(OPENAI)
    assert restorer is not None and restorer.restore(sent) == EN
    rules = {(d.rule, d.detector, d.action) for d in plan.decisions if d.target == "openai/gpt-4o"}
    assert ("personal-data-redacted", "person_name", "redact") in rules
    assert "John" not in repr(plan.decisions)


def test_an_operator_rule_can_redact_names_and_let_addresses_through(guard: Guard) -> None:
    policy = Policy.from_config(_config({"entities": {"enabled": True}}, {"rules": [
        {"name": "customer-names-redacted", "class": "personal", "detector": "person_name",
         "action": "redact"},
        {"name": "addresses-may-go", "class": "personal", "detector": "postal_address",
         "action": "allow"},
    ]}))
    body = {"model": "m", "messages": [{"role": "user", "content": FR}]}
    plan = policy.plan(body, guard.scan_request(body), [OPENAI], ANONYMOUS)
    sent = plan.body_for(OPENAI, body)["messages"][0]["content"]
    assert sent == FR.replace("Jean-Pierre Martin", "[NAME_1]")
    rules = {(d.rule, d.detector) for d in plan.decisions}
    assert {("customer-names-redacted", "person_name"),
            ("addresses-may-go", "postal_address")} <= rules


def test_a_missing_language_package_fails_at_start_up_naming_key_and_package() -> None:
    with pytest.raises(ConfigError) as caught:
        _config({"entities": {"enabled": True, "models": {"fr": "fr_core_news_missing"}}})
    assert caught.value.key == "guard.entities.models"
    assert "fr_core_news_missing" in caught.value.reason
    assert "is not installed" in caught.value.reason and "install" in caught.value.reason


def test_a_package_without_a_recogniser_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        _config({"entities": {"enabled": True, "languages": ["en"], "models": {"en": "json"}}})
    assert caught.value.key == "guard.entities.models"
    assert "'json'" in caught.value.reason and "meta.json" in caught.value.reason


def test_entities_off_accepts_any_model_name_and_loads_nothing() -> None:
    cfg = GuardConfig.model_validate({"entities": {"models": {"fr": "not_installed_at_all"}}})
    assert cfg.entities.enabled is False


def test_findings_of_a_conversation_point_into_their_own_message(guard: Guard) -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "Tu es un assistant."},
                                       {"role": "user", "content": FR}]}
    names = [(f.message_index, FR[f.start:f.end]) for f in guard.scan_request(body)
             if f.detector == "person_name"]
    assert names == [(1, "Jean-Pierre Martin")]

"""The default rule pack: it loads, every rule carries passing cases both ways, it covers what
security teams expect, and it agrees with Panther's own test cases where the intent is the same."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from umbrellabot.enrich.geoip import OfflineGeo
from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules
from umbrellabot.rules.testing import run_rule_tests

VARIABLES = {"allowed_countries": ["US"]}
# How many Panther cases (mocks: false) the pack claims through `panther_rules`; a change in
# coverage must be deliberate, so the number is stated here.
PANTHER_CASES_COVERED = 259


@pytest.fixture(scope="module")
def pack() -> list[Rule]:
    return load_rules([default_rules_path()], VARIABLES)


def test_pack_loads_from_the_package(pack: list[Rule]) -> None:
    assert len(pack) >= 32
    assert len({rule.id for rule in pack}) == len(pack)


def test_the_original_two_rules_are_there(pack: list[Rule]) -> None:
    by_id = {rule.id: rule for rule in pack}
    assert by_id["iam-user-created"].severity is Severity.HIGH
    assert by_id["api-call-from-disallowed-country"].severity is Severity.HIGH
    create_user = Event({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser"})
    assert by_id["iam-user-created"].matches(create_user)
    foreign = Event({"eventName": "ListBuckets", "sourceIPAddress": "81.2.69.142"}, "GB")
    assert by_id["api-call-from-disallowed-country"].matches(foreign)
    internal = Event({"eventName": "ListBuckets", "sourceIPAddress": "AWS Internal"}, None)
    assert not by_id["api-call-from-disallowed-country"].matches(internal)


def test_every_rule_has_a_matching_and_a_non_matching_case(pack: list[Rule]) -> None:
    for rule in pack:
        expectations = {case.expect for case in rule.tests}
        assert expectations == {True, False}, f"{rule.id} needs cases both ways"
        assert rule.runbook.strip(), f"{rule.id} has no runbook"
        assert rule.tags, f"{rule.id} has no tags"


def test_every_inline_case_passes(pack: list[Rule]) -> None:
    failures = [
        f"{r.rule.id} / {r.case.name}: {r.detail}"
        for r in run_rule_tests(pack, OfflineGeo().country)
        if not r.passed
    ]
    assert not failures, "\n".join(failures)


def _panther_cases(shared_data: Path) -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    with (shared_data / "panther" / "panther_cloudtrail_test_cases.jsonl").open() as lines:
        for line in lines:
            case = json.loads(line)
            if not case["mocks"]:  # mocked cases depend on Panther's lookups, not the record
                cases.setdefault(case["rule_id"], []).append(case)
    return cases


def test_agrees_with_panther_where_intent_is_shared(pack: list[Rule], shared_data: Path) -> None:
    cases = _panther_cases(shared_data)
    geo = OfflineGeo()
    covered: Counter[str] = Counter()
    disagreements = []
    for rule in pack:
        for panther_id in rule.panther_rules:
            assert panther_id in cases, f"{rule.id}: no Panther cases for {panther_id}"
            for case in cases[panther_id]:
                log = case["log"]
                event = Event(log, geo.country(log.get("sourceIPAddress")))
                covered[rule.id] += 1
                if rule.matches(event) != case["expected_result"]:
                    disagreements.append(
                        f"{rule.id} vs {panther_id} {case['test_name']!r}: "
                        f"Panther says {case['expected_result']}"
                    )
    assert not disagreements, "\n".join(disagreements)
    assert sum(covered.values()) == PANTHER_CASES_COVERED, dict(covered)

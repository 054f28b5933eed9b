"""Sigma rules as they are: each modifier and condition form against hand-made records, the
metadata, and the refusals (a pipe aggregation, a placeholder, another log source) with and
without SIGMA_SKIP_UNSUPPORTED."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import Rule, RuleError, load_rules
from umbrellabot.rules.ruleset import RuleSet
from umbrellabot.slack.alert_messages import alert_message

RULE_ID = "8a6b1a5e-0000-4000-8000-000000000001"


def sigma(detection: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "title": "A test rule",
        "id": RULE_ID,
        "status": "test",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": detection,
        "level": "high",
        **meta,
    }


def load(tmp_path: Path, spec: dict[str, Any], **options: Any) -> list[Rule]:
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_rules([path], {}, **options)


def matches(tmp_path: Path, detection: dict[str, Any], record: dict[str, Any]) -> bool:
    [rule] = load(tmp_path, sigma(detection))
    return rule.matches(Event(record))


RECORD: dict[str, Any] = {
    "eventName": "CreateAccessKey",
    "eventSource": "iam.amazonaws.com",
    "userAgent": "S3 Browser 9.5.5 https://s3browser.com",
    "sourceIPAddress": "203.0.113.7",
    "errorCode": "",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
    "requestParameters": {"userName": "alice", "port": 22, "flag": True, "path": "a*b\\c"},
    "responseElements": None,
    "items": ["one", "two"],
}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        # plain strings ignore case and match the whole value
        ({"sel": {"eventName": "createaccesskey"}, "condition": "sel"}, True),
        ({"sel": {"eventName": "CreateAccess"}, "condition": "sel"}, False),
        ({"sel": {"eventName|cased": "createaccesskey"}, "condition": "sel"}, False),
        ({"sel": {"eventName|cased": "CreateAccessKey"}, "condition": "sel"}, True),
        # wildcards, escaped wildcards
        ({"sel": {"eventName": "Create*Key"}, "condition": "sel"}, True),
        ({"sel": {"eventName": "Create?ccessKey"}, "condition": "sel"}, True),
        ({"sel": {"eventName": "Create?Key"}, "condition": "sel"}, False),
        ({"sel": {"requestParameters.path": "a\\*b\\\\c"}, "condition": "sel"}, True),
        ({"sel": {"requestParameters.path": "a\\*b"}, "condition": "sel"}, False),
        ({"sel": {"eventName": "*"}, "condition": "sel"}, True),
        # string modifiers
        ({"sel": {"userAgent|contains": "s3 browser"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|startswith": "S3 Browser"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|endswith": "s3browser.com"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|endswith": "S3 Browser"}, "condition": "sel"}, False),
        ({"sel": {"userAgent|contains|all": ["S3", "9.5"]}, "condition": "sel"}, True),
        ({"sel": {"userAgent|contains|all": ["S3", "10.1"]}, "condition": "sel"}, False),
        ({"sel": {"userAgent|contains": ["nope", "9.5"]}, "condition": "sel"}, True),
        # on an object: its compact JSON text
        ({"sel": {"requestParameters|contains": '"userName":"alice"'}, "condition": "sel"}, True),
        # re, and its flags
        ({"sel": {"userAgent|re": r"Browser \d+\.\d"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|re": "s3 browser"}, "condition": "sel"}, False),  # case counts
        ({"sel": {"userAgent|re|i": "s3 browser"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|re|s": "^S3.+com$"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|re|m": "^https"}, "condition": "sel"}, False),
        # cidr, exists, null, fieldref, numbers and booleans
        ({"sel": {"sourceIPAddress|cidr": "203.0.113.0/24"}, "condition": "sel"}, True),
        (
            {"sel": {"sourceIPAddress|cidr": ["10.0.0.0/8", "2001:db8::/32"]}, "condition": "sel"},
            False,
        ),
        ({"sel": {"errorCode|exists": True}, "condition": "sel"}, True),  # "" is a value
        ({"sel": {"errorMessage|exists": False}, "condition": "sel"}, True),
        ({"sel": {"errorMessage": None}, "condition": "sel"}, True),
        ({"sel": {"responseElements": None}, "condition": "sel"}, True),  # null is missing
        ({"sel": {"eventName": None}, "condition": "sel"}, False),
        (
            {
                "sel": {"userIdentity.arn|fieldref|endswith": "requestParameters.userName"},
                "condition": "sel",
            },
            True,
        ),
        (
            {
                "sel": {"userIdentity.arn|fieldref": "requestParameters.userName"},
                "condition": "sel",
            },
            False,
        ),
        ({"sel": {"requestParameters.port": 22}, "condition": "sel"}, True),
        ({"sel": {"requestParameters.port|gt": 21}, "condition": "sel"}, True),
        ({"sel": {"requestParameters.port|lte": 21}, "condition": "sel"}, False),
        ({"sel": {"requestParameters.flag": True}, "condition": "sel"}, True),
        ({"sel": {"items": "two"}, "condition": "sel"}, True),  # any element of a list
        # a missing field: the test is false, not of it is true
        ({"sel": {"nothere": "x"}, "condition": "sel"}, False),
        ({"sel": {"nothere": "x"}, "condition": "not sel"}, True),
        ({"sel": {"nothere|contains": "x"}, "condition": "not sel"}, True),
        # conditions
        (
            {
                "a": {"eventName": "CreateAccessKey"},
                "b": {"eventSource": "s3.amazonaws.com"},
                "condition": "a and not b",
            },
            True,
        ),
        (
            {
                "a": {"eventName": "CreateAccessKey"},
                "b": {"eventSource": "s3.amazonaws.com"},
                "condition": "a and b",
            },
            False,
        ),
        (
            {
                "a": {"eventName": "x"},
                "b": {"eventSource": "y"},
                "c": {"userAgent|contains": "S3"},
                "condition": "(a or b) or c",
            },
            True,
        ),
        (
            {
                "a": {"eventName": "x"},
                "b": {"eventSource": "y"},
                "c": {"userAgent|contains": "S3"},
                "condition": "(a or b) and c",
            },
            False,
        ),
        (
            {
                "sel_1": {"eventName": "x"},
                "sel_2": {"eventName": "CreateAccessKey"},
                "condition": "1 of sel_*",
            },
            True,
        ),
        (
            {
                "sel_1": {"eventName": "x"},
                "sel_2": {"eventName": "CreateAccessKey"},
                "condition": "all of sel_*",
            },
            False,
        ),
        (
            {
                "sel_1": {"eventSource": "iam.amazonaws.com"},
                "sel_2": {"eventName": "CreateAccessKey"},
                "condition": "all of them",
            },
            True,
        ),
        (
            {
                "sel_1": {"eventSource": "nope"},
                "filter": {"eventName": "nope"},
                "condition": "1 of them",
            },
            False,
        ),
        # a list of mappings is OR; a mapping is AND
        (
            {"sel": [{"eventName": "x"}, {"eventSource": "iam.amazonaws.com"}], "condition": "sel"},
            True,
        ),
        (
            {"sel": {"eventName": "x", "eventSource": "iam.amazonaws.com"}, "condition": "sel"},
            False,
        ),
        ({"sel": {"eventName": ["DeleteUser", "CreateAccessKey"]}, "condition": "sel"}, True),
        # several conditions: any of them
        (
            {
                "a": {"eventName": "x"},
                "b": {"eventName": "CreateAccessKey"},
                "condition": ["a", "b"],
            },
            True,
        ),
        # windash: - and / (and the dashes) are the same
        ({"sel": {"userAgent|windash|contains": "-s3browser"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|windash|contains": "-9.5"}, "condition": "sel"}, False),
        ({"sel": {"userAgent|windash|contains": "-nope"}, "condition": "sel"}, False),
        ({"sel": {"userAgent|windash|contains": " 9.5"}, "condition": "sel"}, True),
    ],
)
def test_modifiers_and_conditions(
    tmp_path: Path, detection: dict[str, Any], expected: bool
) -> None:
    assert matches(tmp_path, detection, RECORD) is expected


def test_windash_expands_dashes() -> None:
    record = {"commandLine": "tool /quiet"}
    spec = sigma({"sel": {"commandLine|windash|contains": "-quiet"}, "condition": "sel"})
    [rule] = load_rules([_write(spec)], {})
    assert rule.matches(Event(record))


def _write(spec: dict[str, Any]) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    path = folder / "rule.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_metadata_becomes_the_rules(tmp_path: Path) -> None:
    spec = sigma(
        {"sel": {"eventName": "CreateAccessKey"}, "condition": "sel"},
        level="informational",
        tags=["attack.persistence", "attack.t1098"],
        author="Jane Doe",
        falsepositives=["Administrators rotating keys"],
        references=["https://example.com/why"],
        description="Keys made.",
    )
    [rule] = load(tmp_path, spec)
    assert rule.id == RULE_ID and rule.kind == "sigma"
    assert rule.severity is Severity.INFO
    assert rule.tags == ("attack.persistence", "attack.t1098")
    assert rule.author == "Jane Doe" and rule.description == "Keys made."
    assert "Administrators rotating keys" in rule.runbook
    assert "https://example.com/why" in rule.runbook
    assert rule.references == ("https://example.com/why",)
    # an alert credits the author, as the Detection Rule License asks
    alert = alert_for(Event({**RECORD, "eventID": "e-1"}), rule)
    said = orjson.dumps(alert_message(alert).blocks).decode()
    assert f"Sigma rule `{RULE_ID}` by Jane Doe" in said
    # the eventName index holds it (case-folded): cheap dispatch
    rules = RuleSet([rule])
    assert rules.candidates({"eventName": "createaccesskey"}) == (rule,)
    assert rules.candidates({"eventName": "DeleteUser"}) == ()


@pytest.mark.parametrize("status", ["deprecated", "unsupported"])
def test_deprecated_and_unsupported_rules_are_skipped_with_a_line(
    tmp_path: Path, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = sigma({"sel": {"eventName": "x"}, "condition": "sel | count() > 5"}, status=status)
    with caplog.at_level(logging.WARNING):
        assert load(tmp_path, spec) == []
    [line] = [r.getMessage() for r in caplog.records]
    assert "rule.yml" in line and RULE_ID in line and f"status: {status}" in line


@pytest.mark.parametrize(
    ("detection", "logsource", "what"),
    [
        (
            {"sel": {"eventName": "x"}, "condition": "sel | count() by sourceIPAddress > 5"},
            None,
            "old pipe aggregation",
        ),
        (
            {"sel": {"country|expand": "%Legitimate_Countries%"}, "condition": "sel"},
            None,
            "placeholder %Legitimate_Countries%",
        ),
        ({"sel": {"eventName|frobnicate": "x"}, "condition": "sel"}, None, "frobnicate"),
        ({"sel": ["CreateUser"], "condition": "sel"}, None, "keyword search"),
        (
            {"sel": {"Image": "x"}, "condition": "sel"},
            {"product": "windows", "category": "process_creation"},
            "not CloudTrail",
        ),
    ],
)
def test_what_cannot_be_compiled_is_refused_or_skipped(
    tmp_path: Path,
    detection: dict[str, Any],
    logsource: dict[str, Any] | None,
    what: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = sigma(detection)
    if logsource is not None:
        spec["logsource"] = logsource
    with pytest.raises(RuleError) as refused:
        load(tmp_path, spec)
    [line] = refused.value.problems
    assert "rule.yml" in line and RULE_ID in line and what in line
    other = tmp_path / "other.yml"
    good = sigma({"sel": {"eventName": "x"}, "condition": "sel"})
    good["id"] = "8a6b1a5e-0000-4000-8000-000000000002"
    other.write_text(yaml.safe_dump(good))
    with caplog.at_level(logging.WARNING):
        rules = load_rules([tmp_path], {}, sigma_skip_unsupported=True)
    assert [r.id for r in rules] == [good["id"]]  # the rest load
    assert any(what in r.getMessage() and RULE_ID in r.getMessage() for r in caplog.records)


def test_a_sigma_rule_without_an_id_is_refused(tmp_path: Path) -> None:
    spec = sigma({"sel": {"eventName": "x"}, "condition": "sel"})
    del spec["id"]
    with pytest.raises(RuleError, match="needs its id"):
        load(tmp_path, spec)

"""Rules compiled to Python source (codegen.py) decide exactly as the closures of expressions.py,
the reference semantics: on the real records, the Panther cases, every rule's own cases, and
those records with each tested field turned into what the fast path does not handle."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from umbrellabot.model.records import Event
from umbrellabot.rules.codegen import compile_predicate
from umbrellabot.rules.expressions import (
    AllNode,
    AnyNode,
    FieldNode,
    Node,
    NotNode,
    Predicate,
    parse_expression,
)
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules

VARIABLES = {"allowed_countries": ["US"]}


@pytest.fixture(scope="module")
def rules(shared_data: Path) -> list[Rule]:
    return load_rules([default_rules_path(), shared_data / "sigma" / "rules"], VARIABLES)


def reference(rule: Rule) -> Predicate:
    matches = rule.match.compile()
    if rule.unless is None:
        return matches
    excluded = rule.unless.compile()
    return lambda event: matches(event) and not excluded(event)


def paths_of(node: Node) -> Iterator[str]:
    if isinstance(node, AllNode | AnyNode):
        for child in node.children:
            yield from paths_of(child)
    elif isinstance(node, NotNode):
        yield from paths_of(node.child)
    elif isinstance(node, FieldNode):
        yield node.tests[0].path


def put(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `record` with `value` at `path` (objects made on the way; None removes it)."""
    out = copy.deepcopy(record)
    here = out
    *parents, last = path.split(".")
    for part in parents:
        child = here.get(part)
        if not isinstance(child, dict):
            child = here[part] = {}
        here = child
    if value is None:
        here.pop(last, None)
    else:
        here[last] = value
    return out


def get(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def variants(record: dict[str, Any], path: str) -> Iterator[dict[str, Any]]:
    """The record, and the value at `path` as everything a CloudTrail field may hold."""
    yield record
    value = get(record, path)
    text = value if isinstance(value, str) else "x"
    for other in (
        None,
        "",
        text.upper(),
        text.lower(),
        text + "ß",
        [text],
        ["other", text],
        [[text]],
        [],
        22,
        True,
        1.5,
        {"k": text},
        json.dumps({"k": text}),
    ):
        yield put(record, path, other)
    if "." in path:  # the walk meets a list, or JSON text, on the way
        head, rest = path.split(".", 1)
        inner = put({}, rest, text)
        yield put(record, head, [inner, {"other": 1}])
        yield put(record, head, json.dumps(inner))
        yield put(record, head, "plain text")


def disagreements(rule: Rule, records: list[dict[str, Any]], country: str | None) -> list[str]:
    compiled, closures = rule.predicate, reference(rule)
    out = []
    for record in records:
        got, want = compiled(Event(record, country)), closures(Event(record, country))
        if got is not want:
            out.append(f"{rule.id}: {got} != {want} for {json.dumps(record)[:300]}")
    return out


def test_the_rules_are_compiled(rules: list[Rule]) -> None:
    assert all(rule.predicate.__code__.co_filename == "<umbrellabot rule>" for rule in rules)


def test_agrees_on_real_records_and_panther_cases(rules: list[Rule], shared_data: Path) -> None:
    records = [
        json.loads(line)
        for line in (shared_data / "cloudtrail" / "events.jsonl").open()
        if line.strip()
    ]
    with (shared_data / "panther" / "panther_cloudtrail_test_cases.jsonl").open() as lines:
        records += [case["log"] for case in map(json.loads, lines) if isinstance(case["log"], dict)]
    failures = []
    for rule in rules:
        for country in ("US", "RU", None):
            failures += disagreements(rule, records, country)
    assert not failures, "\n".join(failures[:20])


def test_agrees_on_every_tested_field_in_every_shape(rules: list[Rule]) -> None:
    failures = []
    for rule in rules:
        bases = [case.record for case in rule.tests] or [{"eventName": "Any"}]
        paths = set(paths_of(rule.match)) | (set(paths_of(rule.unless)) if rule.unless else set())
        for path in sorted(paths):
            records = [variant for base in bases for variant in variants(base, path)]
            failures += disagreements(rule, records, "US")
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize(
    ("spec", "record", "country", "expected"),
    [
        ({"userAgent": "TruffleHog"}, {"userAgent": "trufflehog"}, None, True),
        ({"userAgent": "TruffleHog"}, {"userAgent": ["x", "TRUFFLEHOG"]}, None, True),
        ({"userAgent": {"not_equals": "a"}}, {}, None, True),
        ({"userAgent": {"exists": True}}, {"userAgent": ""}, None, False),
        (
            {"resources.ARN": {"prefix": "arn:aws:s3"}},
            {"resources": [{"ARN": "arn:aws:s3:::b"}]},
            None,
            True,
        ),
        (
            {"requestParameters.policy.Effect": "Allow"},
            {"requestParameters": {"policy": '{"Effect":"Allow"}'}},
            None,
            True,
        ),
        (
            {"requestParameters.*.Effect": "Allow"},
            {"requestParameters": {"p": {"Effect": "allow"}}},
            None,
            True,
        ),
        ({"geo.country": {"not_in": ["US"]}}, {}, "RU", True),
        (
            {"principal": {"contains": "alice"}},
            {"userIdentity": {"type": "IAMUser", "userName": "Alice"}},
            None,
            True,
        ),
        (
            {"userName": {"equals": {"field": "userIdentity.userName"}}},
            {"userName": "a", "userIdentity": {"userName": "A"}},
            None,
            True,
        ),
        ({"userAgent": {"regex": "^Boto3/1\\.3[0-9]"}}, {"userAgent": "Boto3/1.34.69"}, None, True),
        ({"userAgent": {"wildcard": "*hog"}}, {"userAgent": "TruffleHOG"}, None, True),
        (
            {"userAgent": {"glob": "aws-cli/*", "case_sensitive": True}},
            {"userAgent": "AWS-cli/2"},
            None,
            False,
        ),
    ],
)
def test_compiled_semantics(
    spec: Any, record: dict[str, Any], country: str | None, expected: bool
) -> None:
    node = parse_expression(spec, "match", {})
    event = Event(record, country)
    assert compile_predicate(node)(event) is expected
    assert node.compile()(event) is expected


def test_a_tree_too_deep_for_the_parser_keeps_its_closures() -> None:
    spec: dict[str, Any] = {"eventName": "A"}
    for _ in range(250):  # Python's parser takes 200 nested parentheses
        spec = {"not": spec}
    predicate = compile_predicate(parse_expression(spec, "match", {}))
    assert predicate.__code__.co_filename != "<umbrellabot rule>"
    assert predicate(Event({"eventName": "B"})) is False  # 250 negations: even, so "is A"
    assert predicate(Event({"eventName": "a"})) is True


def test_operands_never_become_source_text() -> None:
    hostile = "') or __import__('os') or ('{value}"
    node = parse_expression({"userAgent": hostile, hostile: {"contains": hostile}}, "m", {})
    predicate = compile_predicate(node)
    assert predicate(Event({"userAgent": hostile, hostile: hostile})) is True
    assert predicate(Event({"userAgent": "x"})) is False

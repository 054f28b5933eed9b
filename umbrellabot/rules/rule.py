"""Rules: loading YAML files, checking them, and matching events through an index.

Loading is all-or-nothing: every problem in every file is collected and raised together as a
`RuleError`, each line naming the file, the rule id and the key. Nothing runs with half a set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbrellabot.errors import ProblemsError
from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.catalog import load_items
from umbrellabot.rules.context import ContextField, parse_context
from umbrellabot.rules.expressions import (
    ExpressionError,
    Node,
    Predicate,
    parse_expression,
)
from umbrellabot.rules.layers import Disabled, merge_layers


class RuleError(ProblemsError):
    """One or more rule problems; each line names the file, the rule and the key."""

    label = "invalid rule"


@dataclass(frozen=True)
class RuleTestCase:
    name: str
    expect: bool
    record: dict[str, Any]
    geo_country: str | None = None
    fixes_country: bool = False  # geo_country was given (possibly as null)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    match: Node
    source: Path
    description: str = ""
    enabled: bool = True
    tags: tuple[str, ...] = ()
    runbook: str = ""
    author: str | None = None
    references: tuple[str, ...] = ()
    panther_rules: tuple[str, ...] = ()
    channel: str | None = None
    unless: Node | None = None
    context: tuple[ContextField, ...] = ()
    tests: tuple[RuleTestCase, ...] = ()
    replaces: Path | None = None  # the file of the earlier rule of this id it replaced
    disabled_in: Path | None = None  # the later RULES_PATH file that turned it off
    predicate: Predicate = field(compare=False, repr=False, default=lambda event: False)

    def matches(self, event: Event) -> bool:
        return self.predicate(event)


_REQUIRED = ("id", "title", "severity", "match")
_TEXT_KEYS = ("title", "description", "runbook", "author", "channel")
_LIST_KEYS = ("tags", "references", "panther_rules")
_KNOWN_KEYS = frozenset(
    {*_REQUIRED, *_TEXT_KEYS, *_LIST_KEYS, "enabled", "unless", "context", "tests"}
)
_TEST_KEYS = frozenset({"name", "expect", "record", "geo_country"})


def _compile(match: Node, unless: Node | None) -> Predicate:
    matches = match.compile()
    if unless is None:
        return matches
    excluded = unless.compile()
    return lambda event: matches(event) and not excluded(event)


def _text_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ExpressionError(key, "expected a list of text")
    return tuple(value)


def _parse_tests(value: Any) -> tuple[RuleTestCase, ...]:
    if not isinstance(value, list):
        raise ExpressionError("tests", "expected a list of test cases")
    cases = []
    for index, case in enumerate(value):
        where = f"tests[{index}]"
        if not isinstance(case, Mapping):
            raise ExpressionError(where, "expected a mapping with name, expect and record")
        unknown = sorted(set(map(str, case)) - _TEST_KEYS)
        if unknown:
            raise ExpressionError(
                f"{where}.{unknown[0]}", "unknown key (expected name, expect, record, geo_country)"
            )
        name = case.get("name", f"case {index + 1}")
        if not isinstance(case.get("expect"), bool):
            raise ExpressionError(f"{where}.expect", "expected true or false")
        if not isinstance(case.get("record"), Mapping):
            raise ExpressionError(f"{where}.record", "expected a CloudTrail record (a mapping)")
        country = case.get("geo_country")
        if country is not None and not isinstance(country, str):
            raise ExpressionError(f"{where}.geo_country", "expected a country code or null")
        cases.append(
            RuleTestCase(
                str(name),
                case["expect"],
                dict(case["record"]),
                country.upper() if country else None,
                "geo_country" in case,
            )
        )
    return tuple(cases)


def parse_rule(spec: Mapping[str, Any], source: Path, variables: Mapping[str, Any]) -> Rule:
    """Build one rule; raises ExpressionError naming the key."""
    missing = [key for key in _REQUIRED if key not in spec]
    if missing:
        raise ExpressionError(missing[0], "missing required key")
    unknown = sorted(set(map(str, spec)) - _KNOWN_KEYS)
    if unknown:
        raise ExpressionError(unknown[0], f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})")
    for key in _TEXT_KEYS:
        if key in spec and spec[key] is not None and not isinstance(spec[key], str):
            raise ExpressionError(key, "expected text")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ExpressionError("enabled", "expected true or false")
    if not isinstance(spec["severity"], str):
        raise ExpressionError("severity", "expected text")
    try:
        severity = Severity.parse(spec["severity"])
    except ValueError as err:
        raise ExpressionError("severity", str(err)) from None
    match = parse_expression(spec["match"], "match", variables)
    unless = parse_expression(spec["unless"], "unless", variables) if "unless" in spec else None
    lists = {key: _text_list(spec[key], key) for key in _LIST_KEYS if key in spec}
    return Rule(
        id=str(spec["id"]),
        title=spec["title"],
        severity=severity,
        match=match,
        unless=unless,
        source=source,
        description=spec.get("description") or "",
        enabled=enabled,
        runbook=spec.get("runbook") or "",
        author=spec.get("author"),
        channel=spec.get("channel"),
        tags=lists.get("tags", ()),
        references=lists.get("references", ()),
        panther_rules=lists.get("panther_rules", ()),
        context=parse_context(spec["context"]) if "context" in spec else (),
        tests=_parse_tests(spec.get("tests", [])),
        predicate=_compile(match, unless),
    )


def load_layer(path: Path, variables: Mapping[str, Any]) -> list[Rule | Disabled]:
    """One RULES_PATH entry: its rules, and the ids it disables (`{id: x, enabled: false}`)."""

    def parse(spec: Mapping[str, Any], source: Path) -> Rule | Disabled:
        if set(map(str, spec)) <= {"id", "enabled"} and spec.get("enabled") is False:
            return Disabled(str(spec["id"]), source)
        return parse_rule(spec, source, variables)

    return load_items(
        [path],
        noun="rule",
        plural="rules",
        parse=parse,
        problems_of=(ExpressionError,),
        error=RuleError,
    )


def load_rules(paths: Sequence[Path], variables: Mapping[str, Any]) -> list[Rule]:
    """Load and check every rule under `paths`; all problems are raised together. Each path is
    a layer over the ones before it (`RULES_PATH=default,./mine.yaml`): a rule with an earlier
    one's id replaces it, `{id: x, enabled: false}` turns it off; ids are unique in a layer."""
    layers: list[list[Rule | Disabled]] = []
    problems: list[str] = []
    for path in paths:
        try:
            layers.append(load_layer(path, variables))
        except RuleError as err:
            problems.extend(err.problems)
    rules, problems = merge_layers(layers) if not problems else ([], problems)
    if problems:
        raise RuleError(problems)
    return rules


def default_rules_path() -> Path:
    """The packaged default pack (in a wheel), else config/rules/ of a source checkout."""
    package = Path(__file__).resolve().parents[1]  # umbrellabot/
    packaged = package / "default_rules"
    if packaged.is_dir():
        return packaged
    return package.parent / "config" / "rules"

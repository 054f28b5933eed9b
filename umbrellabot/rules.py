"""Rules: loading YAML files, checking them, and matching events through an index.

Loading is all-or-nothing: every problem in every file is collected and raised together as a
`RuleError`, each line naming the file, the rule id and the key. Nothing runs with half a set.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbrellabot.catalog import load_items
from umbrellabot.errors import ProblemsError
from umbrellabot.expressions import (
    INDEXED_FIELDS,
    ExpressionError,
    Node,
    Predicate,
    parse_expression,
)
from umbrellabot.records import Event


class Severity(enum.IntEnum):
    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in reversed(cls))
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


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
    tests: tuple[RuleTestCase, ...] = ()
    predicate: Predicate = field(compare=False, repr=False, default=lambda event: False)

    def matches(self, event: Event) -> bool:
        return self.predicate(event)


_REQUIRED = ("id", "title", "severity", "match")
_TEXT_KEYS = ("title", "description", "runbook", "author", "channel")
_LIST_KEYS = ("tags", "references", "panther_rules")
_KNOWN_KEYS = frozenset({*_REQUIRED, *_TEXT_KEYS, *_LIST_KEYS, "enabled", "unless", "tests"})
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
        tests=_parse_tests(spec.get("tests", [])),
        predicate=_compile(match, unless),
    )


def load_rules(paths: Sequence[Path], variables: Mapping[str, Any]) -> list[Rule]:
    """Load and check every rule under `paths`; all problems are raised together."""
    return load_items(
        paths,
        noun="rule",
        plural="rules",
        parse=lambda spec, path: parse_rule(spec, path, variables),
        problems_of=(ExpressionError,),
        error=RuleError,
    )


class RuleSet:
    """The enabled rules, dispatched by eventName/eventSource so that rules that cannot match an
    event cost it one dictionary lookup."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.enabled = tuple(rule for rule in rules if rule.enabled)
        self._by_field: dict[str, dict[str, list[tuple[int, Rule]]]] = {
            name: {} for name in INDEXED_FIELDS
        }
        self._generic: list[tuple[int, Rule]] = []
        for position, rule in enumerate(self.enabled):
            required = rule.match.required_values()
            indexed = next((name for name in INDEXED_FIELDS if name in required), None)
            if indexed is None:
                self._generic.append((position, rule))
                continue
            for value in required[indexed]:
                self._by_field[indexed].setdefault(value, []).append((position, rule))
        self._candidates: dict[tuple[str, str], tuple[Rule, ...]] = {}

    def __len__(self) -> int:
        return len(self.enabled)

    def candidates(self, record: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The enabled rules that could match `record`, in load order."""
        name = record.get("eventName")
        source = record.get("eventSource")
        key = (
            name.casefold() if isinstance(name, str) else "",
            source.casefold() if isinstance(source, str) else "",
        )
        found = self._candidates.get(key)
        if found is None:
            picked = list(self._generic)
            picked += self._by_field["eventName"].get(key[0], [])
            picked += self._by_field["eventSource"].get(key[1], [])
            found = tuple(rule for _, rule in sorted(picked, key=lambda pair: pair[0]))
            if len(self._candidates) < 100_000:  # bounded: names come from untrusted logs
                self._candidates[key] = found
        return found

    def match(self, event: Event) -> list[Rule]:
        return [rule for rule in self.candidates(event.record) if rule.predicate(event)]


def default_rules_path() -> Path:
    """The packaged default pack (in a wheel), else config/rules/ of a source checkout."""
    packaged = Path(__file__).parent / "default_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "config" / "rules"

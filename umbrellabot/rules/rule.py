"""Rules: loading YAML files, checking them, and matching events through an index.

Loading is all-or-nothing: every problem in every file is collected and raised together as a
`RuleError`, each line naming the file, the rule id and the key. Nothing runs with half a set.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbrellabot.errors import ProblemsError
from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.catalog import load_items
from umbrellabot.rules.codegen import compile_predicate
from umbrellabot.rules.context import ContextField, parse_context
from umbrellabot.rules.expressions import (
    ExpressionError,
    Node,
    Predicate,
    parse_expression,
)
from umbrellabot.rules.layers import Disabled, merge_layers
from umbrellabot.rules.sigma import SIGMA_KIND, SigmaUnsupported, Skipped, is_sigma, read_sigma
from umbrellabot.rules.sigma_correlation import (
    SigmaCorrelation,
    is_correlation,
    read_correlation,
    resolve,
)

log = logging.getLogger(__name__)


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
    kind: str | None = None  # "sigma" for a Sigma rule (its id is the Sigma id)
    name: str | None = None  # a Sigma rule's `name`, what correlation rules may call it
    # False for the base rules of a Sigma correlation (without `generate: true`): they mark
    # events in xrules for the correlation, which alerts, and are counted for the digest
    alerts: bool = True
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
        predicate=compile_predicate(match, unless),
    )


def parse_sigma_rule(
    spec: Mapping[str, Any], source: Path, *, skip_unsupported: bool = False
) -> Rule | Skipped:
    """A Sigma rule (sigma.py); Skipped for its status, or for what is unsupported when
    `skip_unsupported` (SIGMA_SKIP_UNSUPPORTED), else SigmaUnsupported is raised."""
    try:
        parts = read_sigma(spec)
    except SigmaUnsupported as err:
        if not skip_unsupported:
            raise
        return Skipped(str(spec["id"]), source, str(err))
    if isinstance(parts, str):
        return Skipped(str(spec["id"]), source, parts)
    return Rule(
        id=parts.id,
        title=parts.title,
        severity=parts.severity,
        match=parts.match,
        source=source,
        description=parts.description,
        tags=parts.tags,
        runbook=parts.runbook,
        author=parts.author,
        references=parts.references,
        kind=SIGMA_KIND,
        name=parts.name,
        predicate=compile_predicate(parts.match),
    )


LayerItem = Rule | Disabled | Skipped | SigmaCorrelation


def _parse_correlation(
    spec: Mapping[str, Any], source: Path, skip_unsupported: bool
) -> SigmaCorrelation | Skipped:
    status = str(spec.get("status") or "").lower()
    if status in ("deprecated", "unsupported"):
        return Skipped(str(spec["id"]), source, f"status: {status}")
    try:
        return read_correlation(spec, source)
    except SigmaUnsupported as err:
        if not skip_unsupported:
            raise
        return Skipped(str(spec["id"]), source, str(err))


def load_layer(
    path: Path, variables: Mapping[str, Any], *, sigma_skip_unsupported: bool = False
) -> list[LayerItem]:
    """One RULES_PATH entry: its rules (our YAML and Sigma), the ids it disables (`{id: x,
    enabled: false}`), its Sigma correlations and the Sigma rules it skips."""

    def parse(spec: Mapping[str, Any], source: Path) -> LayerItem:
        if set(map(str, spec)) <= {"id", "enabled"} and spec.get("enabled") is False:
            return Disabled(str(spec["id"]), source)
        if is_correlation(spec):
            return _parse_correlation(spec, source, sigma_skip_unsupported)
        if is_sigma(spec):
            return parse_sigma_rule(spec, source, skip_unsupported=sigma_skip_unsupported)
        return parse_rule(spec, source, variables)

    return load_items(
        [path],
        noun="rule",
        plural="rules",
        parse=parse,
        problems_of=(ExpressionError,),
        error=RuleError,
    )


@dataclass(frozen=True)
class RuleCatalog:
    rules: list[Rule]
    correlations: list[SigmaCorrelation]  # Sigma correlation rules, their base rules resolved


def load_rule_catalog(
    paths: Sequence[Path],
    variables: Mapping[str, Any],
    *,
    sigma_skip_unsupported: bool = False,
    quiet: bool = False,
) -> RuleCatalog:
    """Load and check every rule under `paths`; all problems are raised together. Each path is
    a layer over the ones before it (`RULES_PATH=default,./mine.yaml`): a rule with an earlier
    one's id replaces it, `{id: x, enabled: false}` turns it off; ids are unique in a layer.
    A skipped Sigma rule is one warning line naming its file, id and why."""
    layers: list[list[Rule | Disabled]] = []
    correlations: dict[str, SigmaCorrelation] = {}
    problems: list[str] = []
    for path in paths:
        try:
            items = load_layer(path, variables, sigma_skip_unsupported=sigma_skip_unsupported)
        except RuleError as err:
            problems.extend(err.problems)
            continue
        for item in items:
            if isinstance(item, Skipped) and not quiet:
                log.warning("%s: Sigma rule %r skipped: %s", item.source, item.id, item.reason)
            elif isinstance(item, SigmaCorrelation):
                correlations[item.id] = item
        layers.append([item for item in items if isinstance(item, Rule | Disabled)])
    rules, problems = merge_layers(layers) if not problems else ([], problems)
    resolved, unresolved = resolve(list(correlations.values()), rules)
    problems += unresolved
    silent = {i for c in resolved if not c.generate for i in c.rule_ids}
    rules = [dataclasses.replace(r, alerts=False) if r.id in silent else r for r in rules]
    if problems:
        raise RuleError(problems)
    return RuleCatalog(rules, resolved)


def load_rules(
    paths: Sequence[Path],
    variables: Mapping[str, Any],
    *,
    sigma_skip_unsupported: bool = False,
    quiet: bool = False,
) -> list[Rule]:
    """The rules of `load_rule_catalog` (Sigma correlations aside)."""
    return load_rule_catalog(
        paths, variables, sigma_skip_unsupported=sigma_skip_unsupported, quiet=quiet
    ).rules


def default_rules_path() -> Path:
    """The packaged default pack (in a wheel), else config/rules/ of a source checkout."""
    package = Path(__file__).resolve().parents[1]  # umbrellabot/
    packaged = package / "default_rules"
    if packaged.is_dir():
        return packaged
    return package.parent / "config" / "rules"

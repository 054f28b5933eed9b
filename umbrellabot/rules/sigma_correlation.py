"""Sigma correlation rules (`correlation:` with `event_count`, `value_count` or `temporal`) under
RULES_PATH, read with pySigma into a pure description. They cannot be decided on one event, so
query/sigma_detections.py makes each one a SQL detection on the engine that filters on the base
rules' ids in `xrules`. Their `rules:` name base Sigma rules by `name` or `id`; a name that no
loaded rule has is refused, naming the file, the correlation and the name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umbrellabot.model.severity import Severity
from umbrellabot.rules.expressions import ExpressionError
from umbrellabot.rules.sigma import SIGMA_LEVELS, SigmaUnsupported

if TYPE_CHECKING:
    from umbrellabot.rules.rule import Rule

SUPPORTED_KINDS = ("event_count", "value_count", "temporal")
OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}


@dataclass(frozen=True)
class SigmaCorrelation:
    id: str
    title: str
    severity: Severity
    kind: str  # event_count, value_count, temporal
    references: tuple[str, ...]  # base rules as written (name or id)
    group_by: tuple[str, ...]  # Sigma field names (CloudTrail dotted paths)
    timespan_s: int
    operator: str  # gt, gte, ... (temporal: gte, the number of base rules)
    count: int
    source: Path
    value_field: str | None = None  # value_count: the field whose distinct values count
    description: str = ""
    author: str | None = None
    tags: tuple[str, ...] = ()
    runbook: str = ""
    rule_ids: tuple[str, ...] = ()  # the base rules' ids, once resolved
    generate: bool = False  # Sigma: whether the base rules still alert on their own


def is_correlation(spec: Mapping[str, Any]) -> bool:
    return "correlation" in spec


def read_correlation(spec: Mapping[str, Any], source: Path) -> SigmaCorrelation:
    """Raises SigmaUnsupported for a kind umbrellabot cannot run, ExpressionError otherwise."""
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    if not spec.get("id"):
        raise ExpressionError("id", "a Sigma correlation needs its id (the UUID)")
    kind = str((spec.get("correlation") or {}).get("type", "")).lower()
    if kind not in SUPPORTED_KINDS:
        raise SigmaUnsupported(
            "correlation.type", f"{kind or 'none'} (supported: {', '.join(SUPPORTED_KINDS)})"
        )
    try:
        rule = SigmaCorrelationRule.from_dict(dict(spec))
    except SigmaError as err:
        raise ExpressionError("correlation", str(err).split("\n")[0]) from None
    condition = rule.condition
    operator = getattr(getattr(condition, "op", None), "name", "GTE").lower()
    count = int(getattr(condition, "count", 1) or 1)
    field = getattr(condition, "fieldref", None)
    if isinstance(field, list):
        raise SigmaUnsupported("correlation.condition.field", "more than one field")
    references = tuple(ref.reference for ref in rule.rules or ())
    if kind == "temporal":
        operator, count = "gte", len(references)
    if kind == "value_count" and not field:
        raise ExpressionError("correlation.condition.field", "value_count needs the field")
    level = rule.level.name.lower() if rule.level else "medium"
    return SigmaCorrelation(
        id=str(rule.id or spec["id"]),
        title=rule.title,
        severity=SIGMA_LEVELS.get(level, Severity.MEDIUM),
        kind=kind,
        references=references,
        group_by=tuple(rule.group_by or ()),
        timespan_s=int(rule.timespan.seconds),
        operator=operator if operator in OPERATORS else "gte",
        count=max(count, 1),
        source=source,
        value_field=str(field) if field else None,
        description=(rule.description or "").strip(),
        author=rule.author or None,
        tags=tuple(f"{tag.namespace}.{tag.name}" for tag in rule.tags),
        generate=bool(rule.generate),
        runbook="False positives: " + "; ".join(map(str, rule.falsepositives))
        if rule.falsepositives
        else "",
    )


def resolve(
    correlations: Sequence[SigmaCorrelation], rules: Sequence[Rule]
) -> tuple[list[SigmaCorrelation], list[str]]:
    """Each correlation with its base rules' ids, and a problem for each name no rule has."""
    by_reference: dict[str, str] = {}
    for rule in rules:
        if rule.kind == "sigma":
            by_reference[rule.id] = rule.id
            if rule.name:
                by_reference[rule.name] = rule.id
    resolved, problems = [], []
    for correlation in correlations:
        missing = [ref for ref in correlation.references if ref not in by_reference]
        if missing:
            problems.append(
                f"{correlation.source}: rule {correlation.id!r}: correlation.rules: {missing[0]!r}"
                " is the name or id of no loaded Sigma rule"
            )
            continue
        ids = tuple(dict.fromkeys(by_reference[ref] for ref in correlation.references))
        resolved.append(replace(correlation, rule_ids=ids))
    return resolved, problems

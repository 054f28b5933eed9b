"""Running the test cases that rules carry inline (`umbrellabot rules test`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from umbrellabot.model.records import Event, Record, is_insight_record
from umbrellabot.rules.rule import Rule, RuleTestCase
from umbrellabot.rules.ruleset import RuleSet, applies_to

CountryOf = Callable[[str | None], str | None]


@dataclass(frozen=True)
class CaseResult:
    rule: Rule
    case: RuleTestCase
    passed: bool
    detail: str = ""


def event_for(case: RuleTestCase, country_of: CountryOf) -> Event:
    if case.fixes_country:
        return Event(case.record, case.geo_country)
    source = case.record.get("sourceIPAddress")
    return Event(case.record, country_of(source if isinstance(source, str) else None))


def run_case(rule: Rule, case: RuleTestCase, index: RuleSet, country_of: CountryOf) -> CaseResult:
    event = event_for(case, country_of)
    if not applies_to(rule, case.record):  # an Insight for an event rule, or the reverse
        if case.expect:
            why = _kind(rule, case.record)
            return CaseResult(rule, case, False, f"expected True, got False\n{why}")
        return CaseResult(rule, case, True)
    got = rule.predicate(event)
    if got != case.expect:
        why = "\n".join(rule.match.explain(event).lines(1))
        if rule.unless is not None:
            why += "\n  unless:\n" + "\n".join(rule.unless.explain(event).lines(2))
        return CaseResult(rule, case, False, f"expected {case.expect}, got {got}\n{why}")
    # The index must never hide a match: what dispatch finds has to agree with the predicate.
    if rule.enabled and (rule in index.match(event)) != got:
        return CaseResult(rule, case, False, "the rule index disagrees with the rule's predicate")
    return CaseResult(rule, case, True)


def run_rule_tests(rules: Sequence[Rule], country_of: CountryOf) -> list[CaseResult]:
    index = RuleSet(rules)
    return [run_case(rule, case, index, country_of) for rule in rules for case in rule.tests]


def _kind(rule: Rule, record: Record) -> str:
    if is_insight_record(record):
        return (
            "  the record is a CloudTrail Insights event and the rule reads event logs;"
            " a rule reads Insights when it requires eventType: AwsCloudTrailInsight"
        )
    return f"  rule {rule.id!r} reads Insights events only (eventType: AwsCloudTrailInsight)"

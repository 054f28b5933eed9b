"""The whole story of one event: who did what, where, when, and which rules flagged it and why.
Pure: built from an enriched record and the loaded rules; `show` prints it, the Slack bot posts
the same content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from umbrellabot.model.alerts import console_url
from umbrellabot.model.facts import INSIGHT_TYPES, EventFacts
from umbrellabot.model.records import Event, get_str
from umbrellabot.model.schema import ENRICHMENT_FIELDS
from umbrellabot.model.severity import Severity
from umbrellabot.rules.context import context_of
from umbrellabot.rules.expressions import Explanation
from umbrellabot.rules.rule import Rule
from umbrellabot.rules.ruleset import applies_to


@dataclass(frozen=True)
class Finding:
    """One rule that matches the event now, with the conditions that held."""

    rule: Rule
    match: Explanation
    unless: Explanation | None
    at_enrichment: bool  # the enriched copy lists this rule in xrules
    context: tuple[tuple[str, str], ...] = ()  # the rule's `context:` fields of this event


@dataclass(frozen=True)
class EventStory(EventFacts):
    """The facts of one event, where it was found, its outcome, and the rules that match it."""

    record: dict[str, Any]
    location: str | None
    priority: str | None
    outcome: str  # "success" or the errorCode (and message)
    findings: tuple[Finding, ...]
    gone_rules: tuple[str, ...]  # in xrules, but no such rule is loaded now
    console_link: str | None

    @property
    def severity(self) -> Severity | None:
        try:
            return Severity[self.priority] if self.priority else None
        except KeyError:
            return None


def original_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as CloudTrail wrote it (without the x-fields enrichment added)."""
    return {key: value for key, value in record.items() if key not in ENRICHMENT_FIELDS}


def pretty_json(value: Any) -> str:
    """Indented JSON; JSON held in text (policy documents) is shown as it is."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def build_story(
    record: dict[str, Any],
    rules: Sequence[Rule],
    location: str | None = None,
) -> EventStory:
    country = record.get("xcountry_code") if isinstance(record.get("xcountry_code"), str) else None
    event = Event(original_record(record), country)
    xrules = record.get("xrules")
    flagged: list[Any] = xrules if isinstance(xrules, list) else []
    loaded = {rule.id for rule in rules}
    findings = tuple(
        Finding(
            rule,
            rule.match.explain(event),
            rule.unless.explain(event) if rule.unless else None,
            rule.id in flagged,
            context_of(rule.context, event),
        )
        for rule in sorted(rules, key=lambda r: -r.severity)
        if rule.enabled and applies_to(rule, event.record) and rule.matches(event)
    )
    facts = EventFacts.of(event)
    message = get_str(record, "errorMessage")
    error = facts.error_code
    outcome = "success" if not error else f"{error}{': ' + message if message else ''}"
    if facts.identity_type in INSIGHT_TYPES:  # an Insight: what CloudTrail saw of the API
        outcome = facts.result
    return EventStory(
        **facts.fact_values(),
        record=record,
        location=location,
        priority=get_str(record, "xpriority"),
        outcome=outcome,
        findings=findings,
        gone_rules=tuple(str(rule_id) for rule_id in flagged if rule_id not in loaded),
        console_link=console_url(facts.event_id, facts.region),
    )

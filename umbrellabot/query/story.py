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
from umbrellabot.model.records import Event, get_str
from umbrellabot.model.schema import ENRICHMENT_FIELDS
from umbrellabot.model.severity import Severity
from umbrellabot.rules.expressions import Explanation
from umbrellabot.rules.rule import Rule


@dataclass(frozen=True)
class Finding:
    """One rule that matches the event now, with the conditions that held."""

    rule: Rule
    match: Explanation
    unless: Explanation | None
    at_enrichment: bool  # the enriched copy lists this rule in xrules


@dataclass(frozen=True)
class EventStory:
    record: dict[str, Any]
    location: str | None
    event_id: str | None
    event_time: str | None
    priority: str | None
    action: str
    outcome: str  # "success" or the errorCode (and message)
    principal: str | None
    identity_type: str | None
    account: str | None
    region: str | None
    source_ip: str | None
    country: str | None
    user_agent: str | None
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
        )
        for rule in sorted(rules, key=lambda r: -r.severity)
        if rule.enabled and rule.matches(event)
    )
    error = get_str(record, "errorCode")
    message = get_str(record, "errorMessage")
    outcome = "success" if not error else f"{error}{': ' + message if message else ''}"
    service = (get_str(record, "eventSource") or "?").removesuffix(".amazonaws.com")
    event_id = get_str(record, "eventID")
    region = get_str(record, "awsRegion")
    return EventStory(
        record=record,
        location=location,
        event_id=event_id,
        event_time=get_str(record, "eventTime"),
        priority=get_str(record, "xpriority"),
        action=f"{service}:{get_str(record, 'eventName') or '?'}",
        outcome=outcome,
        principal=event.principal,
        identity_type=get_str(record, "userIdentity", "type"),
        account=event.account,
        region=region,
        source_ip=get_str(record, "sourceIPAddress"),
        country=country,
        user_agent=get_str(record, "userAgent"),
        findings=findings,
        gone_rules=tuple(str(rule_id) for rule_id in flagged if rule_id not in loaded),
        console_link=console_url(event_id, region),
    )

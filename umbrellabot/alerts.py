"""Alerts: what people are told about one event that one rule flagged. Pure data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from umbrellabot.records import Event, get_str
from umbrellabot.rules import Rule, Severity


@dataclass(frozen=True)
class Alert:
    rule_id: str
    rule_title: str
    severity: Severity
    event_id: str | None
    event_time: str | None
    event_source: str | None
    event_name: str | None
    principal: str | None
    identity_type: str | None
    account: str | None
    region: str | None
    source_ip: str | None
    country: str | None
    user_agent: str | None
    error_code: str | None
    runbook: str
    author: str | None
    source_file: str | None = None
    # Alerts of scheduled detections (many events): the group key and window, which with
    # rule_id is what the outbox deduplicates on instead of the eventID.
    group_key: str | None = None

    @classmethod
    def build(cls, event: Event, rule: Rule, source_file: str | None = None) -> Alert:
        record = event.record
        return cls(
            rule_id=rule.id,
            rule_title=rule.title,
            severity=rule.severity,
            event_id=get_str(record, "eventID"),
            event_time=get_str(record, "eventTime"),
            event_source=get_str(record, "eventSource"),
            event_name=get_str(record, "eventName"),
            principal=event.principal,
            identity_type=get_str(record, "userIdentity", "type"),
            account=event.account,
            region=get_str(record, "awsRegion"),
            source_ip=get_str(record, "sourceIPAddress"),
            country=event.country,
            user_agent=get_str(record, "userAgent"),
            error_code=get_str(record, "errorCode"),
            runbook=rule.runbook,
            author=rule.author,
            source_file=source_file,
        )

    @property
    def action(self) -> str:
        """eventSource:eventName, the way AWS people say it (iam:CreateUser)."""
        service = (self.event_source or "?").removesuffix(".amazonaws.com")
        return f"{service}:{self.event_name or '?'}"

    @property
    def console_link(self) -> str | None:
        return console_url(self.event_id, self.region)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.name
        return data


def console_url(event_id: str | None, region: str | None) -> str | None:
    """The event in CloudTrail's event history (management events of the last 90 days)."""
    if not event_id or not region:
        return None
    quoted_id, quoted_region = quote(event_id, safe=""), quote(region, safe="")
    return (
        f"https://{quoted_region}.console.aws.amazon.com/cloudtrailv2/home"
        f"?region={quoted_region}#/events/{quoted_id}"
    )

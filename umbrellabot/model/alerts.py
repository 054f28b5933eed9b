"""Alerts: what people are told about one event that one rule (or a detection) flagged, and
the key that keeps each one from being told twice. Pure data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import orjson

from umbrellabot.model.facts import EventFacts
from umbrellabot.model.severity import Severity


@dataclass(frozen=True)
class Alert(EventFacts):
    """One rule (or detection) flagging one event: the event's facts, and the rule's."""

    rule_id: str
    rule_title: str
    severity: Severity
    runbook: str
    author: str | None
    source_file: str | None = None
    # Alerts of scheduled detections (many events): the group key and window, which with
    # rule_id is what the outbox deduplicates on instead of the eventID.
    group_key: str | None = None
    # A follow-up told in the thread of an earlier alert (its dedup key): "files resume".
    reply_to: str | None = None
    # The rule's `context:` for this event: (label, value), what a responder needs first.
    context: tuple[tuple[str, str], ...] = ()
    # "sigma" for a Sigma rule: the alert credits it as one ("Sigma rule … by <author>")
    rule_kind: str | None = None

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


def dedup_key(alert: Alert) -> str:
    """(eventID, rule): CloudTrail may deliver one event twice; it is alerted on once.
    A detection's alert: (detection, group key, window), so re-runs within a window add none."""
    if alert.group_key is not None:
        return f"{alert.rule_id}|{alert.group_key}"
    event = alert.event_id or "|".join(
        str(part) for part in (alert.event_time, alert.action, alert.principal, alert.source_ip)
    )
    return f"{event}\x1f{alert.rule_id}"


def alert_to_json(alert: Alert) -> str:
    return orjson.dumps(alert.as_dict()).decode()


def alert_from_json(payload: str | bytes) -> Alert:
    data = orjson.loads(payload)
    data["severity"] = Severity[data["severity"]]
    data["context"] = tuple((str(label), str(value)) for label, value in data.get("context", ()))
    return Alert(**data)

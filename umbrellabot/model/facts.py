"""The facts people are shown about one event — who did what, where, when — taken from a
record once, for alerts and for the story of an event alike. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from umbrellabot.model.records import Event, get_str


def action_of(event_source: str | None, event_name: str | None) -> str:
    """eventSource:eventName, the way AWS people say it (iam:CreateUser)."""
    service = (event_source or "?").removesuffix(".amazonaws.com")
    return f"{service}:{event_name or '?'}"


@dataclass(frozen=True)
class EventFacts:
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

    @classmethod
    def of(cls, event: Event) -> EventFacts:
        record = event.record
        return cls(
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
        )

    @property
    def action(self) -> str:
        return action_of(self.event_source, self.event_name)

    def fact_values(self) -> dict[str, Any]:
        """The facts alone, by field name (a subclass's own fields left out)."""
        return {name: getattr(self, name) for name in FACT_FIELDS}


FACT_FIELDS = tuple(field.name for field in fields(EventFacts))

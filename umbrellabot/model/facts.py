"""The facts people are shown about one event — who did what, where, when — taken from a
record once, for alerts and for the story of an event alike. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from umbrellabot.model.records import Event, get_str

FACT_CHARS = 2048  # what is kept of one fact: a hostile record cannot bloat state or message


def bounded(value: str | None, limit: int = FACT_CHARS) -> str | None:
    """`value`, cut to `limit` characters (marked with an ellipsis) when longer."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


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
            event_id=bounded(get_str(record, "eventID")),
            event_time=bounded(get_str(record, "eventTime")),
            event_source=bounded(get_str(record, "eventSource")),
            event_name=bounded(get_str(record, "eventName")),
            principal=bounded(event.principal),
            identity_type=bounded(get_str(record, "userIdentity", "type")),
            account=bounded(event.account),
            region=bounded(get_str(record, "awsRegion")),
            source_ip=bounded(get_str(record, "sourceIPAddress")),
            country=bounded(event.country),
            user_agent=bounded(get_str(record, "userAgent")),
            error_code=bounded(get_str(record, "errorCode")),
        )

    @property
    def action(self) -> str:
        return action_of(self.event_source, self.event_name)

    def fact_values(self) -> dict[str, Any]:
        """The facts alone, by field name (a subclass's own fields left out)."""
        return {name: getattr(self, name) for name in FACT_FIELDS}


FACT_FIELDS = tuple(field.name for field in fields(EventFacts))

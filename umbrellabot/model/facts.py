"""The facts people are shown about one event — who did what, where, when — taken from a
record once, for alerts and for the story of an event alike. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from umbrellabot.model.records import Event, get_str, is_insight_record

INSIGHTS = "CloudTrail Insights"  # who an Insight's facts name: CloudTrail saw the calls
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


# An Insight's type (its facts' identity_type) -> what it says about the API
INSIGHT_TYPES = {
    "ApiCallRateInsight": "unusual call rate",
    "ApiErrorRateInsight": "unusual error rate",
}


def outcome_of(identity_type: str | None, error_code: str | None) -> str:
    """`succeeded`, `failed: <code>`, or what an Insight saw (`unusual error rate: <code>`)."""
    insight = INSIGHT_TYPES.get(identity_type or "")
    if insight is not None:
        return f"{insight}: {error_code}" if error_code else insight
    return f"failed: {error_code}" if error_code else "succeeded"


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
        details = record.get("insightDetails") if is_insight_record(record) else None
        # An Insight is about an API (insightDetails.eventName), seen by CloudTrail itself
        place = details if isinstance(details, dict) else record
        return cls(
            event_id=bounded(get_str(record, "eventID")),
            event_time=bounded(get_str(record, "eventTime")),
            event_source=bounded(get_str(place, "eventSource")),
            event_name=bounded(get_str(place, "eventName")),
            principal=bounded(INSIGHTS if place is details else event.principal),
            identity_type=bounded(
                get_str(place, "insightType")
                if place is details
                else get_str(record, "userIdentity", "type")
            ),
            account=bounded(event.account),
            region=bounded(get_str(record, "awsRegion")),
            source_ip=bounded(get_str(record, "sourceIPAddress")),
            country=bounded(event.country),
            user_agent=bounded(get_str(record, "userAgent")),
            error_code=bounded(get_str(place, "errorCode")),
        )

    @property
    def result(self) -> str:
        """How the call went, or what an Insight saw (outcome_of)."""
        return outcome_of(self.identity_type, self.error_code)

    @property
    def action(self) -> str:
        return action_of(self.event_source, self.event_name)

    def fact_values(self) -> dict[str, Any]:
        """The facts alone, by field name (a subclass's own fields left out)."""
        return {name: getattr(self, name) for name in FACT_FIELDS}


FACT_FIELDS = tuple(field.name for field in fields(EventFacts))

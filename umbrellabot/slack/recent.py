"""Where `recent [N]` comes from: the alert outbox (what was actually alerted: instant, no
query cost; preferred) or a `recent_alerts` query over the enriched history."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from umbrellabot.model.alerts import Alert
from umbrellabot.model.facts import action_of
from umbrellabot.model.records import principal_of_identity
from umbrellabot.model.severity import Severity
from umbrellabot.query.queries import Engine, TimeRange
from umbrellabot.query.queries import recent_alerts as recent_alerts_query
from umbrellabot.slack.replies import RecentItem

RecentSource = Callable[[int], Awaitable[Sequence[RecentItem]]]


class AlertHistory(Protocol):
    """What `recent_from_outbox` needs of the state store: the newest alerts of the outbox
    (delivered or not), newest first."""

    def recent_alerts(self, limit: int) -> Sequence[Alert]: ...


def items_from_alerts(alerts: Sequence[Alert]) -> list[RecentItem]:
    """One item per event (its alerts' rules together), in the order given (newest first)."""
    items: OrderedDict[tuple[str | None, ...], list[Alert]] = OrderedDict()
    for alert in alerts:
        key = (alert.event_id, alert.event_time, alert.action, alert.principal)
        items.setdefault(key, []).append(alert)
    result = []
    for group in items.values():
        first = max(group, key=lambda alert: alert.severity)
        result.append(
            RecentItem(
                event_id=first.event_id,
                event_time=first.event_time,
                severity=first.severity,
                action=first.action,
                principal=first.principal,
                source_ip=first.source_ip,
                country=first.country,
                rules=tuple(dict.fromkeys(alert.rule_id for alert in group)),
                error_code=first.error_code,
            )
        )
    return result


def recent_from_outbox(store: AlertHistory) -> RecentSource:
    """`recent` from the alert outbox, read in a thread."""

    async def recent(limit: int) -> Sequence[RecentItem]:
        # a few more alerts than events: one event may carry several rules
        alerts = await asyncio.to_thread(store.recent_alerts, limit * 4)
        return items_from_alerts(alerts)[:limit]

    return recent


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    return str(value) if value not in (None, "") else None


def item_from_row(row: Mapping[str, Any]) -> RecentItem:
    """A row of query.recent_alerts (SUMMARY_COLUMNS) as a list item."""
    try:
        severity: Severity | None = Severity[str(row.get("xpriority"))]
    except KeyError:
        severity = None
    principal = principal_of_identity(
        _text(row, "identity_type"), _text(row, "principal_arn"), _text(row, "user_name")
    )
    rules = row.get("xrules")
    return RecentItem(
        event_id=_text(row, "eventid"),
        event_time=_text(row, "eventtime"),
        severity=severity,
        action=action_of(_text(row, "eventsource"), _text(row, "eventname")),
        principal=principal,
        source_ip=_text(row, "sourceipaddress"),
        country=_text(row, "xcountry_code"),
        rules=tuple(str(rule) for rule in rules) if isinstance(rules, list | tuple) else (),
        error_code=_text(row, "errorcode"),
    )


def recent_from_engine(engine: Engine, min_severity: Severity, days: int = 7) -> RecentSource:
    """`recent` as a query over the enriched history of the last `days` days."""

    async def recent(limit: int) -> Sequence[RecentItem]:
        query = recent_alerts_query(min_severity, limit, TimeRange.last(days=days))
        return [item_from_row(row) for row in await engine.run(query)]

    return recent

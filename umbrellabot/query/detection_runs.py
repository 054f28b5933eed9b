"""Running the detections on a query engine, and the alerts their results raise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from umbrellabot.model.alerts import Alert
from umbrellabot.model.records import principal_of_identity
from umbrellabot.model.severity import Severity
from umbrellabot.query.detection_plans import Plan, plan, results_of
from umbrellabot.query.detections import LATE_EVENTS, Detection, DetectionResult
from umbrellabot.query.queries import Engine, QueryError, Row, iso


class DetectionRunError(Exception):
    """Some detections could not run; `results` holds what the others found."""

    def __init__(self, results: list[DetectionResult], failures: dict[str, str]) -> None:
        lines = [f"detection {name}: {reason}" for name, reason in failures.items()]
        super().__init__("\n".join(lines))
        self.results = results
        self.failures = failures


async def run_detections(
    engine: Engine,
    detections: Sequence[Detection],
    now: datetime | None = None,
    *,
    late_events: timedelta = LATE_EVENTS,
    concurrency: int = 2,
) -> list[DetectionResult]:
    """Run every enabled detection once at `now` on `engine`.

    Results are in detection order, then window order. If some detections fail (QueryError,
    QueryTimeout, a result without its columns), the others still run, then DetectionRunError
    is raised with their results and one reason per failed detection."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    plans = [plan(d, moment, late_events) for d in detections if d.enabled]
    gate = asyncio.Semaphore(max(concurrency, 1))

    async def one(item: Plan) -> list[DetectionResult] | str:
        async with gate:
            try:
                return results_of(item, await engine.run(item.query))
            except QueryError as err:
                return str(err) or type(err).__name__

    outcomes = await asyncio.gather(*(one(item) for item in plans))
    results: list[DetectionResult] = []
    failures: dict[str, str] = {}
    for item, outcome in zip(plans, outcomes, strict=True):
        if isinstance(outcome, str):
            failures[item.detection.id] = outcome
        else:
            results.extend(outcome)
    if failures:
        raise DetectionRunError(results, failures)
    return results


_FIELDS: Mapping[str, tuple[str, ...]] = {
    "event_id": ("event_id", "eventid"),
    "event_source": ("event_source", "eventsource"),
    "event_name": ("event_name", "eventname"),
    "identity_type": ("identity_type",),
    "account": ("account", "recipientaccountid"),
    "region": ("region", "awsregion"),
    "source_ip": ("source_ip", "sourceipaddress"),
    "country": ("country", "xcountry_code"),
    "user_agent": ("user_agent", "useragent"),
    "error_code": ("error_code", "errorcode"),
}


def alerts_for(
    results: Iterable[DetectionResult], min_severity: Severity = Severity.INFO
) -> list[Alert]:
    """One alert per result at or above `min_severity` (pass settings.alert_min_severity)."""
    alerts: list[Alert] = []
    for result in results:
        detection = result.detection
        if detection.severity < min_severity:
            continue
        row = result.row
        fields = {name: _row_text(row, *columns) for name, columns in _FIELDS.items()}
        count = result.count
        title = detection.title
        if count is not None:
            title = f"{title} ({count} in {detection.window_text})"
        alerts.append(
            Alert(
                rule_id=detection.id,
                rule_title=title,
                severity=detection.severity,
                event_time=_row_text(row, "last_time", "first_time") or iso(result.window_end),
                principal=_row_text(row, "principal")
                or principal_of_identity(
                    _row_text(row, "identity_type"), _row_text(row, "principal_arn")
                ),
                runbook=detection.runbook,
                author=detection.author,
                group_key=result.alert_key,
                context=(),  # a detection's alert names its group, not one event's fields
                **fields,
            )
        )
    return alerts


def _row_text(row: Row, *columns: str) -> str | None:
    for column in columns:
        value = row.get(column)
        if isinstance(value, list | tuple):
            value = ", ".join(str(item) for item in value if item is not None) or None
        if value is not None and value != "":
            return str(value)
    return None

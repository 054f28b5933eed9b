"""When a detection runs: the aligned windows one run evaluates and the query that reads them,
and the rows it returns as results. Pure.

Windows are tumbling and aligned to the epoch, so the same burst falls in the same window however
often detections run; each run evaluates every window that ended less than `late_events`
(default 1 h) ago, for events CloudTrail delivers late, plus the detection's lookback before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from umbrellabot.query.detections import (
    BUCKET_COLUMN,
    LATE_EVENTS,
    Detection,
    DetectionResult,
    as_int,
)
from umbrellabot.query.queries import ParamValue, Query, QueryError, Row, TimeRange, iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What one run of one detection reads and evaluates."""

    detection: Detection
    query: Query
    first_bucket: int
    last_bucket: int


def plan(detection: Detection, now: datetime, late_events: timedelta = LATE_EVENTS) -> Plan:
    """The query of one run at `now`: the windows that ended less than `late_events` ago and
    the current one, plus the detection's lookback before them."""
    now = now.astimezone(UTC).replace(microsecond=0)
    window_s = int(detection.window.total_seconds())
    earliest = now - max(detection.window, late_events)
    first_bucket = math.floor(earliest.timestamp() / window_s)
    last_bucket = math.floor(now.timestamp() / window_s)
    window_start = datetime.fromtimestamp(first_bucket * window_s, UTC)
    params: dict[str, ParamValue] = {
        "threshold": detection.threshold,
        "window_s": window_s,
        "window_start": iso(window_start),
        "window_end": iso(now),
        "window_first_day": f"{window_start:%Y/%m/%d}",
    }
    query = Query(
        f"detection {detection.id}",
        detection.expanded_sql(),
        TimeRange(window_start - detection.lookback, now),
        params,
    )
    return Plan(detection, query, first_bucket, last_bucket)


def results_of(plan: Plan, rows: Iterable[Row]) -> list[DetectionResult]:
    """Rows -> results, oldest window first; raises QueryError for rows without the bucket or a
    group column. Rows for windows outside the evaluated ones are left out (and logged)."""
    detection = plan.detection
    window_s = int(detection.window.total_seconds())
    results: list[DetectionResult] = []
    outside = 0
    for row in rows:
        missing = [name for name in (BUCKET_COLUMN, *detection.group_by) if name not in row]
        if missing:
            raise QueryError(f"the result has no column {missing[0]!r}")
        try:
            bucket = as_int(row[BUCKET_COLUMN])
        except (TypeError, ValueError):
            raise QueryError(f"bucket is not a number: {row[BUCKET_COLUMN]!r}") from None
        if not plan.first_bucket <= bucket <= plan.last_bucket:
            outside += 1
            continue
        start = datetime.fromtimestamp(bucket * window_s, UTC)
        results.append(
            DetectionResult(
                detection=detection,
                group_key={name: row[name] for name in detection.group_by},
                window_start=start,
                window_end=start + detection.window,
                row=row,
            )
        )
    results.sort(key=lambda result: (result.window_start, result.alert_key))
    if outside:
        log.warning(
            "detection %s: %d rows for windows outside the evaluated ones ignored",
            detection.id,
            outside,
        )
    return results

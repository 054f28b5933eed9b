"""Scheduled SQL detections: what a single event cannot show (bursts, baselines, sequences).

A detection is Trino SQL over the enriched table plus metadata, in YAML files under
`config/detections/` (one detection per file, or a mapping with a `detections:` list):

    id: console-login-failures
    title: Failed console sign-ins from one address
    severity: high
    window: 15m           # windows the events are counted in (s, m, h, d, w)
    lookback: 30d         # optional: history read before the windows (baselines); default none
    threshold: 5          # the SQL's `:threshold`
    group_by: [source_ip] # result columns that say what one alert is about
    runbook: ...
    sql: |
      SELECT ... FROM {events} WHERE {in_range} ... HAVING count(*) >= :threshold

The SQL returns one row per (group, window) that fired, with a `bucket` column (the window:
`{bucket}`, which is `floor(epoch(eventtime) / window)`), the `group_by` columns, and whatever
helps people (`count`, `principal`, `principal_arn`, `source_ip`, `country`, `account`, `region`,
`event_name`, `event_source`, `event_id`, `identity_type`, `user_agent`, `error_code`,
`first_time`, `last_time`: these fill the alert's fields).

Placeholders: `{events}` the table; `{in_range}` restricts a scan to the whole time range read
(the lookback and the windows); `{in_window}` to the evaluated windows only; `{bucket}` the
window of `eventtime`. Every `{events}` scan needs one of the two restrictions (partition
pruning on Athena, file pruning on DuckDB); they name `"date"` and `eventtime` without a table
alias, so give each scan its own CTE or subquery rather than joining `{events}` to itself.
Named parameters: `:threshold`, `:window_s` (window length, seconds), `:window_start` /
`:window_end` (ISO text: the evaluated windows, from the start of the first to now),
`:window_first_day`, and the range's `:range_start`, `:range_end`, `:first_day`, `:last_day`.

Windows are tumbling and aligned to the epoch, so the same burst falls in the same window
however often detections run; each run evaluates every window that ended less than
`late_events` (default 1 h) ago, for events CloudTrail delivers late. An alert is deduplicated by
(detection, group key, window start): re-running within a window, or a window evaluated again
on a later run, adds nothing to the outbox. A burst that straddles two windows is counted in
each of them separately (choose windows and thresholds with that in mind).

Loading is all-or-nothing, like rules: every problem of every file is raised together as a
`DetectionError`, each line naming the file, the detection id and the key. The SQL is parsed
with sqlglot (Trino) and translated to DuckDB at load, its parameters and output columns are
checked, so a detection that cannot run is refused before anything runs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from umbrellabot.errors import ProblemsError, first_line
from umbrellabot.model.severity import Severity
from umbrellabot.query.queries import (
    RANGE_PREDICATE,
    Row,
    iso,
)
from umbrellabot.rules.catalog import load_items

log = logging.getLogger(__name__)

WINDOW_PREDICATE = (
    '"date" BETWEEN :window_first_day AND :last_day AND eventtime >= :window_start'
    " AND eventtime < :range_end"
)
BUCKET_EXPRESSION = (
    "CAST(floor(to_unixtime(from_iso8601_timestamp(eventtime)) / :window_s) AS bigint)"
)
PLACEHOLDERS = {
    "events": "{events}",  # left for the engine
    "in_range": RANGE_PREDICATE,
    "in_window": WINDOW_PREDICATE,
    "bucket": BUCKET_EXPRESSION,
}
PARAMETERS = frozenset(
    {
        "threshold",
        "window_s",
        "window_start",
        "window_end",
        "window_first_day",
        "range_start",
        "range_end",
        "first_day",
        "last_day",
    }
)
LATE_EVENTS = timedelta(hours=1)
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=7)
MAX_LOOKBACK = timedelta(days=366)
BUCKET_COLUMN = "bucket"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
_REQUIRED = ("id", "title", "severity", "window", "threshold", "group_by", "sql")
_TEXT_KEYS = ("title", "description", "runbook", "author")
_KNOWN_KEYS = frozenset({*_REQUIRED, *_TEXT_KEYS, "lookback", "tags", "enabled"})


class DetectionError(ProblemsError):
    """One or more detection problems; each line names the file, the detection and the key."""

    label = "invalid detection"


class _KeyProblem(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class Detection:
    id: str
    title: str
    severity: Severity
    window: timedelta
    threshold: int
    group_by: tuple[str, ...]
    sql: str  # as written, with its {placeholders}
    source: Path
    lookback: timedelta = timedelta(0)
    description: str = ""
    runbook: str = ""
    author: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def window_text(self) -> str:
        return format_duration(self.window)

    def expanded_sql(self) -> str:
        """The SQL with {in_range}, {in_window} and {bucket} filled in ({events} stays)."""
        return expand(self.sql)


@dataclass(frozen=True)
class DetectionResult:
    """One group that fired in one window."""

    detection: Detection
    group_key: dict[str, Any]  # group_by column -> value
    window_start: datetime
    window_end: datetime
    row: Row = field(repr=False)

    @property
    def count(self) -> int | None:
        value = self.row.get("count")
        return as_int(value) if value is not None else None

    def summary(self) -> str:
        """One line for people: detection, group, window, count."""
        group = ", ".join(f"{name}={value}" for name, value in self.group_key.items())
        count = "" if self.count is None else f", {self.count} in {self.detection.window_text}"
        return (
            f"{self.detection.id} [{self.detection.severity.label}] {group or '(all)'}:"
            f" {iso(self.window_start)} .. {iso(self.window_end)}{count}"
        )

    @property
    def alert_key(self) -> str:
        """Group key and window start as text: with the detection id, the outbox's dedup key."""
        values = {name: _key_text(value) for name, value in self.group_key.items()}
        return f"{orjson.dumps(values).decode()}@{iso(self.window_start)}"


# Durations


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `30d`, `2w` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as 15m, 1h or 30d, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


# Loading


def expand(sql: str) -> str:
    return _PLACEHOLDER.sub(lambda m: PLACEHOLDERS.get(m.group(1), m.group(0)), sql)


def _check_sql(sql: str, group_by: Sequence[str]) -> None:
    """Raise _KeyProblem for SQL that cannot run as a detection."""
    names = _PLACEHOLDER.findall(sql)
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        raise _KeyProblem("sql", f"unknown placeholder {{{unknown[0]}}} (known: {known})")
    scans = names.count("events")
    restrictions = names.count("in_range") + names.count("in_window")
    if scans == 0:
        raise _KeyProblem("sql", "does not read {events}")
    if restrictions == 0:
        raise _KeyProblem(
            "sql", "does not restrict the partitions: add {in_range} (or {in_window})"
        )
    if restrictions < scans:
        raise _KeyProblem(
            "sql",
            f"reads {{events}} {scans} times but restricts only {restrictions}: every scan"
            " needs its own {in_range} or {in_window}",
        )
    text = expand(sql).replace("{events}", "events")
    try:
        statements = sqlglot.parse(text, read="trino")
    except SqlglotError as err:
        raise _KeyProblem("sql", f"does not parse as Trino SQL: {first_line(str(err))}") from None
    if len(statements) != 1 or statements[0] is None:
        raise _KeyProblem("sql", "expected exactly one SELECT statement")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _KeyProblem("sql", "expected a SELECT statement")
    placeholders = list(tree.find_all(exp.Placeholder))
    if any(node.this is None for node in placeholders):
        raise _KeyProblem("sql", "positional ? parameters are not supported; use :name")
    unknown_params = sorted({str(node.this) for node in placeholders} - PARAMETERS)
    if unknown_params:
        known = ", ".join(f":{name}" for name in sorted(PARAMETERS))
        raise _KeyProblem("sql", f"unknown parameter :{unknown_params[0]} (known: {known})")
    try:
        tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as err:
        raise _KeyProblem(
            "sql", f"cannot be translated to DuckDB: {first_line(str(err))}"
        ) from None
    columns = set(tree.named_selects)
    if "*" not in columns:
        for needed in (BUCKET_COLUMN, *group_by):
            if needed not in columns:
                raise _KeyProblem(
                    "sql", f"the result has no column {needed!r} (returns: {', '.join(columns)})"
                )


def _text_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _KeyProblem(key, "expected a list of text")
    return tuple(value)


def _duration(spec: Mapping[str, Any], key: str) -> timedelta:
    value = spec[key]
    if not isinstance(value, str):
        raise _KeyProblem(key, "expected a duration such as 15m, 1h or 30d")
    try:
        return parse_duration(value)
    except ValueError as err:
        raise _KeyProblem(key, str(err)) from None


def parse_detection(spec: Mapping[str, Any], source: Path) -> Detection:
    """Build one detection; raises _KeyProblem naming the key."""
    missing = [key for key in _REQUIRED if key not in spec]
    if missing:
        raise _KeyProblem(missing[0], "missing required key")
    unknown = sorted(set(map(str, spec)) - _KNOWN_KEYS)
    if unknown:
        raise _KeyProblem(unknown[0], f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})")
    for key in _TEXT_KEYS:
        if key in spec and spec[key] is not None and not isinstance(spec[key], str):
            raise _KeyProblem(key, "expected text")
    if not isinstance(spec["title"], str) or not spec["title"].strip():
        raise _KeyProblem("title", "expected text")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _KeyProblem("enabled", "expected true or false")
    if not isinstance(spec["severity"], str):
        raise _KeyProblem("severity", "expected text")
    try:
        severity = Severity.parse(spec["severity"])
    except ValueError as err:
        raise _KeyProblem("severity", str(err)) from None
    window = _duration(spec, "window")
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise _KeyProblem(
            "window",
            f"expected between {format_duration(MIN_WINDOW)} and {format_duration(MAX_WINDOW)}",
        )
    lookback = _duration(spec, "lookback") if "lookback" in spec else timedelta(0)
    if lookback > MAX_LOOKBACK:
        raise _KeyProblem("lookback", f"expected at most {format_duration(MAX_LOOKBACK)}")
    threshold = spec["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise _KeyProblem("threshold", "expected a whole number, 1 or more")
    group_by = _text_list(spec["group_by"], "group_by")
    bad = [name for name in group_by if not _COLUMN.match(name)]
    if bad:
        raise _KeyProblem(
            "group_by", f"{bad[0]!r} is not a lower-case result column name (a-z, 0-9, _)"
        )
    if len(set(group_by)) != len(group_by):
        raise _KeyProblem("group_by", "a column is named twice")
    if BUCKET_COLUMN in group_by:
        raise _KeyProblem("group_by", "bucket is the window, not part of the group key")
    sql = spec["sql"]
    if not isinstance(sql, str) or not sql.strip():
        raise _KeyProblem("sql", "expected the SQL text")
    _check_sql(sql, group_by)
    return Detection(
        id=str(spec["id"]),
        title=spec["title"].strip(),
        severity=severity,
        window=window,
        threshold=threshold,
        group_by=group_by,
        sql=sql.strip(),
        source=source,
        lookback=lookback,
        description=(spec.get("description") or "").strip(),
        runbook=(spec.get("runbook") or "").strip(),
        author=spec.get("author"),
        tags=_text_list(spec["tags"], "tags") if "tags" in spec else (),
        enabled=enabled,
    )


def load_detections(paths: Sequence[Path]) -> list[Detection]:
    """Load and check every detection under `paths`; all problems are raised together."""
    return load_items(
        paths,
        noun="detection",
        plural="detections",
        parse=parse_detection,
        problems_of=(_KeyProblem,),
        error=DetectionError,
    )


def default_detections_path() -> Path:
    """The packaged detections (in a wheel), else config/detections/ of a source checkout."""
    package = Path(__file__).resolve().parents[1]  # umbrellabot/
    packaged = package / "default_detections"
    if packaged.is_dir():
        return packaged
    return package.parent / "config" / "detections"


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a count")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return math.floor(value)
    if isinstance(value, str):
        return math.floor(float(value))
    raise TypeError(f"not a number: {value!r}")


def _key_text(value: Any) -> str | None:
    """Group values as text, so Athena (text) and DuckDB (typed) give the same key."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

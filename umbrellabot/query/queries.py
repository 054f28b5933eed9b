"""The query interface over the enriched history: logical queries, time ranges, validation.

Queries are written once, in Athena's (Trino) SQL, against the relation `{events}` — the enriched
table — with named parameters (`:event_id`). Every query that reads events includes `{in_range}`,
which restricts the partition column `"date"` and `eventtime` to a `TimeRange`, so Athena scans
only the days asked for and DuckDB reads only those days' files. Engines (athena.py,
duckdb_engine.py) put their relation in place of `{events}`, turn named parameters into
positional ones and pass the values separately: nothing a user typed is ever spliced into SQL
text. User input is also validated here before any query is built.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from umbrellabot.model.severity import Severity

ParamValue = str | int | float
Row = dict[str, Any]

_HEX = "[0-9a-fA-F]"
_EVENT_ID = re.compile(rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
_PRINCIPAL = re.compile(r"^[\w+=,.@/:-]{1,256}$")
# `:name` outside quotes; `::` (a cast) is left alone.
_NAMED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(?<!:):([a-z_][a-z0-9_]*)""")
RANGE_PREDICATE = (
    '"date" BETWEEN :first_day AND :last_day AND eventtime >= :range_start'
    " AND eventtime < :range_end"
)
MAX_ROWS = 1000


class InvalidQueryInput(ValueError):
    """User input refused before any query; str() says what was expected."""


class QueryError(Exception):
    """The engine could not answer; str() carries the engine's reason."""


class QueryTimeout(QueryError):
    """The query took longer than allowed and was stopped."""


def iso(moment: datetime) -> str:
    """CloudTrail's eventTime format (UTC, seconds), which also sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def last(
        cls,
        *,
        days: float = 0,
        minutes: float = 0,
        now: datetime | None = None,
    ) -> TimeRange:
        end = (now or datetime.now(UTC)).astimezone(UTC)
        return cls(end - timedelta(days=days, minutes=minutes), end)

    def days(self) -> list[date]:
        """The day partitions the range touches."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def params(self) -> dict[str, ParamValue]:
        days = self.days()
        return {
            "first_day": f"{days[0]:%Y/%m/%d}",
            "last_day": f"{days[-1]:%Y/%m/%d}",
            "range_start": iso(self.start),
            "range_end": iso(self.end),
        }


@dataclass(frozen=True)
class Query:
    """A logical query: Trino SQL over `{events}` with named parameters, and its time range."""

    name: str
    sql: str
    time_range: TimeRange
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def all_params(self) -> dict[str, ParamValue]:
        return {**self.time_range.params(), **self.params}


def bind(sql: str, params: Mapping[str, ParamValue]) -> tuple[str, list[ParamValue]]:
    """`:name` placeholders to positional `?`, with the values in order."""
    values: list[ParamValue] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # a quoted literal or identifier: untouched
            return match.group(1)
        name = match.group(2)
        if name not in params:
            raise KeyError(f"no value for query parameter :{name}")
        values.append(params[name])
        return "?"

    return _NAMED.sub(replace, sql), values


def events_query(name: str, sql: str, time_range: TimeRange, **params: ParamValue) -> Query:
    if "{in_range}" not in sql:
        raise ValueError(f"query {name} does not restrict the partitions ({{in_range}})")
    return Query(name, sql.replace("{in_range}", RANGE_PREDICATE), time_range, params)


class Engine(Protocol):
    """One query interface, two engines (Athena, DuckDB)."""

    name: str

    async def run(self, query: Query) -> list[Row]:
        """Rows as dicts of typed values. Raises QueryError / QueryTimeout."""
        ...


# Validation of what users type, before any query is built.


def valid_event_id(text: str) -> str:
    candidate = text.strip()
    if not _EVENT_ID.match(candidate):
        raise InvalidQueryInput(
            f"{text[:80]!r} is not a CloudTrail eventID (a UUID such as "
            "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0)"
        )
    return candidate


def valid_principal(text: str) -> str:
    candidate = text.strip()
    if not _PRINCIPAL.match(candidate):
        raise InvalidQueryInput(
            f"{text[:80]!r} is not a principal (a user name, role/session, ARN or 'root')"
        )
    return candidate


def valid_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidQueryInput(f"{text[:80]!r} is not an IPv4 or IPv6 address") from None


def valid_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS:
        raise InvalidQueryInput(f"the number of rows must be between 1 and {MAX_ROWS}")
    return limit


def _like_suffix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%/{escaped}"


# The logical queries the rest of the system needs.

SUMMARY_COLUMNS = (
    "eventid, eventtime, eventsource, eventname, awsregion, recipientaccountid,"
    " useridentity.type AS identity_type, useridentity.arn AS principal_arn,"
    " useridentity.username AS user_name, sourceipaddress, xcountry_code, errorcode,"
    " xpriority, xrules"
)


def event_by_id(event_id: str, time_range: TimeRange) -> Query:
    """Where the enriched record of one event is (`"$path"`), over a bounded window."""
    return events_query(
        "event_by_id",
        'SELECT "$path" AS path, eventid, eventtime, xpriority FROM {events}'
        " WHERE {in_range} AND eventid = :event_id LIMIT 1",
        time_range,
        event_id=valid_event_id(event_id),
    )


def recent_alerts(min_severity: Severity, limit: int, time_range: TimeRange) -> Query:
    """Flagged events at or above a severity, newest first."""
    levels = [s for s in Severity if s >= min_severity]
    names = {f"p{index}": level.name for index, level in enumerate(levels)}
    placeholders = ", ".join(f":{name}" for name in names)
    return events_query(
        "recent_alerts",
        f"SELECT {SUMMARY_COLUMNS} FROM {{events}} WHERE {{in_range}}"
        f" AND xpriority IN ({placeholders}) ORDER BY eventtime DESC LIMIT {valid_limit(limit)}",
        time_range,
        **names,
    )


def events_of_principal(principal: str, limit: int, time_range: TimeRange) -> Query:
    who = valid_principal(principal)
    return events_query(
        "events_of_principal",
        f"SELECT {SUMMARY_COLUMNS} FROM {{events}} WHERE {{in_range}} AND ("
        " useridentity.username = :who OR useridentity.arn = :who"
        " OR useridentity.arn LIKE :arn_suffix ESCAPE '\\'"
        " OR (useridentity.type = 'Root' AND lower(:who) = 'root'))"
        f" ORDER BY eventtime DESC LIMIT {valid_limit(limit)}",
        time_range,
        who=who,
        arn_suffix=_like_suffix(who),
    )


def events_from_ip(address: str, limit: int, time_range: TimeRange) -> Query:
    return events_query(
        "events_from_ip",
        f"SELECT {SUMMARY_COLUMNS} FROM {{events}} WHERE {{in_range}}"
        f" AND sourceipaddress = :address ORDER BY eventtime DESC LIMIT {valid_limit(limit)}",
        time_range,
        address=valid_ip(address),
    )

"""Sigma correlation rules as SQL detections (detections.py) on the engine.

Each correlation reads the events its base rules marked (`contains(xrules, '<id>')`), groups
them by its `group-by` fields and the window, and fires when the condition holds:
- `event_count`: the number of events;
- `value_count`: the number of distinct values of the condition's `field`;
- `temporal`: every base rule matched within the window.
The window is Sigma's `timespan`, tumbling and aligned to the epoch like every detection's, so a
burst that straddles two windows is counted in each (a sliding timespan would see it once).
Sigma fields are CloudTrail's dotted paths: a top-level field is its (lower-case) column, a
field inside `userIdentity` its struct path, one inside JSON text (`requestParameters.x`)
`json_extract_scalar`. The SQL goes through the same checks as a hand-written detection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from umbrellabot.model.schema import RECORD, Kind
from umbrellabot.query.detections import Detection, DetectionError, parse_detection
from umbrellabot.rules.sigma_correlation import OPERATORS, SigmaCorrelation

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
# what the alert's fields are filled from (detections.py names them)
_FACTS = (
    "coalesce(useridentity.arn, useridentity.principalid) AS principal_arn",
    "eventtime",
    "eventid",
    "eventname",
    "eventsource",
    "sourceipaddress",
    "xcountry_code",
    "recipientaccountid",
    "awsregion",
    "useragent",
    "useridentity.type AS identity_type",
)
_SUMMARY = (
    "count(*) AS count",
    "array_join(array_sort(array_agg(DISTINCT principal_arn)), ', ') AS principal",
    "max(principal_arn) AS principal_arn",
    "max(identity_type) AS identity_type",
    "array_join(array_sort(array_agg(DISTINCT recipientaccountid)), ', ') AS account",
    "max(awsregion) AS region",
    "max(sourceipaddress) AS source_ip",
    "max(xcountry_code) AS country",
    "max_by(useragent, eventtime) AS user_agent",
    "max_by(eventid, eventtime) AS event_id",
    "max_by(eventname, eventtime) AS event_name",
    "max_by(eventsource, eventtime) AS event_source",
    "min(eventtime) AS first_time",
    "max(eventtime) AS last_time",
)


class FieldNotQueryable(ValueError):
    pass


def column_of(field: str) -> str:
    """The SQL expression for a Sigma field (a CloudTrail dotted path)."""
    head, *rest = field.split(".")
    names = {name.lower(): name for name in RECORD}
    if head.lower() not in names:
        raise FieldNotQueryable(f"{field!r}: {head!r} is no CloudTrail field")
    kind: Kind = RECORD[names[head.lower()]]
    path = [head.lower()]
    for index, segment in enumerate(rest):
        if isinstance(kind, dict):
            fields = {name.lower(): name for name in kind}
            if segment.lower() not in fields:
                raise FieldNotQueryable(f"{field!r}: {segment!r} is not in the table")
            kind = kind[fields[segment.lower()]]
            path.append(segment.lower())
            continue
        keys = rest[index:]
        if not all(_SAFE_KEY.match(key) for key in keys):
            raise FieldNotQueryable(f"{field!r}: a key umbrellabot cannot quote")
        return f"json_extract_scalar({'.'.join(path)}, '$.{'.'.join(keys)}')"
    if not isinstance(kind, str):
        raise FieldNotQueryable(f"{field!r} is not a text column")
    return ".".join(path)


def alias_of(field: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", field.lower()).strip("_") or "value"


def correlation_sql(correlation: SigmaCorrelation) -> tuple[str, list[str]]:
    """The detection's SQL and its group_by result columns."""
    group = [(alias_of(field), column_of(field)) for field in correlation.group_by]
    names = [name for name, _ in group]
    if len(set(names)) != len(names):
        raise FieldNotQueryable("two group-by fields give the same column name")
    quoted = [rule_id.replace("'", "''") for rule_id in correlation.rule_ids]
    ids = ", ".join(f"'{rule_id}'" for rule_id in quoted)
    matched = " OR ".join(f"contains(xrules, '{rule_id}')" for rule_id in quoted)
    selected = [f"{column} AS {name}" for name, column in group]
    measure = "count(*)"
    if correlation.kind == "value_count":
        selected.append(f"{column_of(correlation.value_field or '')} AS counted_value")
        measure = "count(DISTINCT counted_value)"
    elif correlation.kind == "temporal":
        for index, rule_id in enumerate(quoted):  # which base rules each event matched
            hit = f"CASE WHEN contains(xrules, '{rule_id}') THEN 1 ELSE 0 END"
            selected.append(f"{hit} AS hit_{index}")
        measure = "(" + " + ".join(f"max(hit_{i})" for i in range(len(quoted))) + ")"
    keys = ", ".join([*names, "bucket"])
    sql = (
        f"-- Sigma correlation {correlation.id} ({correlation.kind}) over rules {ids}\n"
        "WITH matched AS (\n"
        f"  SELECT {', '.join([*selected, '{bucket} AS bucket', *_FACTS])}\n"
        "  FROM {events}\n"
        f"  WHERE {{in_range}} AND ({matched})\n"
        ")\n"
        f"SELECT {', '.join([*names, 'bucket', *_SUMMARY, f'{measure} AS measured'])}\n"
        "FROM matched\n"
        f"GROUP BY {keys}\n"
        f"HAVING {measure} {OPERATORS[correlation.operator]} :threshold"
    )
    return sql, names


def correlation_detection(correlation: SigmaCorrelation) -> Detection:
    """The detection of one correlation; DetectionError naming the file and id."""
    where = f"{correlation.source}: rule {correlation.id!r}"
    try:
        sql, group_by = correlation_sql(correlation)
    except FieldNotQueryable as err:
        raise DetectionError([f"{where}: correlation.group-by: {err}"]) from None
    spec = {
        "id": correlation.id,
        "title": correlation.title,
        "severity": correlation.severity.name.lower(),
        "window": f"{max(correlation.timespan_s, 60)}s",
        "threshold": correlation.count,
        "group_by": group_by,
        "sql": sql,
        "description": correlation.description,
        "runbook": correlation.runbook,
        "author": correlation.author,
        "tags": list(correlation.tags),
    }
    try:
        return parse_detection(spec, correlation.source)
    except ValueError as err:
        raise DetectionError([f"{where}: {err}"]) from None


def correlation_detections(correlations: Sequence[SigmaCorrelation]) -> list[Detection]:
    """Every correlation's detection; all problems raised together."""
    detections, problems = [], []
    for correlation in correlations:
        try:
            detections.append(correlation_detection(correlation))
        except DetectionError as err:
            problems.extend(err.problems)
    if problems:
        raise DetectionError(problems)
    return detections

"""The DuckDB engine over enriched files laid out as in S3: partition pruning, the Athena-like
relation, parameters as values, odd records, errors."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, ACCOUNT_B, log_key, record

from umbrellabot.model.severity import Severity
from umbrellabot.query import athena_ddl, duckdb_engine
from umbrellabot.query import queries as query
from umbrellabot.query.duckdb_engine import (
    COLUMNS,
    ColumnType,
    DuckDBEngine,
    partition_files,
    region_folders,
    translate,
)
from umbrellabot.query.queries import (
    Query,
    QueryError,
    QueryTimeout,
    TimeRange,
)

DAY = date(2026, 3, 10)
ORG = "o-abcdefghij"
TARGET_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
OLD_ID = "11111111-2222-4333-8444-555555555555"
ROLE_ARN = f"arn:aws:sts::{ACCOUNT_B}:assumed-role/Admin/alice-session"


def at(day: date, clock: str) -> str:
    return f"{day:%Y-%m-%d}T{clock}Z"


def day_range(day: date, days: int = 1) -> TimeRange:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return TimeRange(start, start + timedelta(days=days))


def write_lines(path: Path, lines: Iterable[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0))
    return path


def write_enriched(
    root: Path,
    records: Iterable[dict[str, Any]],
    *,
    day: date = DAY,
    account: str = ACCOUNT_A,
    region: str = "us-east-1",
    name: str = "a",
    org: str | None = None,
    prefix: str = "",
) -> Path:
    key = log_key(account, region, day, name, prefix=prefix, org=org)
    return write_lines(root / key, (orjson.dumps(item) for item in records))


def role_record(**extra: Any) -> dict[str, Any]:
    return record(
        "GetObject",
        "s3.amazonaws.com",
        userIdentity={
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice-session",
            "arn": ROLE_ARN,
            "accountId": ACCOUNT_B,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "attributes": {"mfaAuthenticated": "true", "creationDate": at(DAY, "08:00:00")},
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{ACCOUNT_B}:role/Admin",
                    "accountId": ACCOUNT_B,
                    "userName": "Admin",
                },
            },
        },
        recipientAccountId=ACCOUNT_B,
        awsRegion="eu-west-1",
        **extra,
    )


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Enriched files: a single-account trail (two days, two regions), an organization trail
    under a prefix, a corrupt file two days back, and files that must never be read."""
    root = tmp_path / "enriched"
    write_enriched(
        root,
        [
            record(
                "CreateUser",
                "iam.amazonaws.com",
                event_id=TARGET_ID,
                eventTime=at(DAY, "10:00:00"),
                xpriority="HIGH",
                xrules=["iam-user-created"],
                xcountry_code="US",
            ),
            record(
                "StopLogging",
                "cloudtrail.amazonaws.com",
                eventTime=at(DAY, "11:00:00"),
                xpriority="CRITICAL",
                xrules=["cloudtrail-stopped", "defense-evasion"],
            ),
            record(
                "PutBucketPolicy",
                "s3.amazonaws.com",
                eventTime=at(DAY, "12:00:00"),
                xpriority="MEDIUM",
                xrules=["s3-policy-changed"],
            ),
            record("DescribeInstances", eventTime=at(DAY, "13:00:00")),
            record(
                "ConsoleLogin",
                "signin.amazonaws.com",
                eventTime=at(DAY, "09:00:00"),
                userIdentity={
                    "type": "Root",
                    "principalId": ACCOUNT_A,
                    "arn": f"arn:aws:iam::{ACCOUNT_A}:root",
                    "accountId": ACCOUNT_A,
                },
                xpriority="CRITICAL",
                xrules=["root-console-login"],
            ),
        ],
    )
    write_enriched(
        root,
        [record("RunInstances", eventTime=at(DAY, "14:00:00"), ip="2001:db8::1")],
        region="eu-central-1",
    )
    write_enriched(
        root,
        [role_record(eventTime=at(DAY, "15:00:00"), sourceIPAddress="198.51.100.7")],
        account=ACCOUNT_B,
        region="eu-west-1",
        org=ORG,
        prefix="org-trail/",
    )
    previous = DAY - timedelta(days=1)
    write_enriched(
        root,
        [
            record(
                "CreateUser",
                "iam.amazonaws.com",
                event_id=OLD_ID,
                eventTime=at(previous, "10:00:00"),
            )
        ],
        day=previous,
    )
    corrupt = root / log_key(ACCOUNT_A, "us-east-1", DAY - timedelta(days=2), "corrupt")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
    day_folder = (root / log_key(ACCOUNT_A, "us-east-1", DAY, "a")).parent
    (day_folder / ".partial-abc123").write_bytes(b"half a file")
    (day_folder / ".partial-def.json.gz").write_bytes(b"half a file")
    digest = root / f"AWSLogs/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/{DAY:%Y/%m/%d}/d.json.gz"
    digest.parent.mkdir(parents=True)
    digest.write_bytes(b"not events")
    return root


async def run(root: Path, q: Query) -> list[dict[str, Any]]:
    return await DuckDBEngine(root).run(q)


def raw_query(sql: str, time_range: TimeRange, **params: query.ParamValue) -> Query:
    return query.events_query("test", sql, time_range, **params)


# Partition pruning


def test_region_folders_of_single_account_and_organization_trails(lake: Path) -> None:
    found = {path.relative_to(lake).as_posix() for path in region_folders(lake)}
    assert found == {
        f"AWSLogs/{ACCOUNT_A}/CloudTrail/us-east-1",
        f"AWSLogs/{ACCOUNT_A}/CloudTrail/eu-central-1",
        f"org-trail/AWSLogs/{ORG}/{ACCOUNT_B}/CloudTrail/eu-west-1",
    }


def test_only_the_range_days_files_are_listed(lake: Path) -> None:
    files = partition_files(lake, day_range(DAY).days())
    names = sorted(path.name for path in files)
    assert len(files) == 3
    assert all(f"/{DAY:%Y/%m/%d}/" in path.as_posix() for path in files)
    assert not any(name.startswith(".") for name in names)
    assert partition_files(lake, [DAY - timedelta(days=5)]) == []
    two_days = partition_files(lake, day_range(DAY - timedelta(days=1), 2).days())
    assert len(two_days) == 4


async def test_a_corrupt_file_of_another_day_is_not_read(lake: Path) -> None:
    # The corrupt file breaks any query whose range includes its day ...
    with pytest.raises(QueryError, match="gzip"):
        await run(lake, query.event_by_id(TARGET_ID, day_range(DAY - timedelta(days=2), 3)))
    # ... and is not touched by a query over the other days.
    rows = await run(lake, query.event_by_id(TARGET_ID, day_range(DAY)))
    assert [row["eventid"] for row in rows] == [TARGET_ID]


async def test_no_files_no_duckdb(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DuckDB started for a range without files")

    monkeypatch.setattr(duckdb_engine.duckdb, "connect", refuse)
    assert await run(lake, query.event_by_id(TARGET_ID, day_range(DAY + timedelta(days=3)))) == []
    assert await run(lake.parent / "nowhere", query.event_by_id(TARGET_ID, day_range(DAY))) == []


# The logical queries


async def test_event_by_id_finds_the_record_and_its_file(lake: Path) -> None:
    rows = await run(lake, query.event_by_id(TARGET_ID, day_range(DAY)))
    assert len(rows) == 1
    row = rows[0]
    assert row["eventid"] == TARGET_ID
    assert row["eventtime"] == at(DAY, "10:00:00")
    assert row["xpriority"] == "HIGH"
    expected = lake / log_key(ACCOUNT_A, "us-east-1", DAY, "a")
    assert Path(row["path"]) == expected


async def test_an_event_outside_the_range_is_not_found(lake: Path) -> None:
    assert await run(lake, query.event_by_id(OLD_ID, day_range(DAY))) == []
    previous = DAY - timedelta(days=1)
    assert len(await run(lake, query.event_by_id(OLD_ID, day_range(previous)))) == 1
    # Same day, but before the range's start time.
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    late = TimeRange(midnight + timedelta(hours=10, seconds=1), midnight + timedelta(hours=23))
    assert await run(lake, query.event_by_id(TARGET_ID, late)) == []


async def test_partition_columns_of_an_organization_trail(lake: Path) -> None:
    rows = await run(
        lake,
        raw_query(
            'SELECT account, region, "date", "$path" AS path, useridentity.sessioncontext'
            ".sessionissuer.username AS issuer, useridentity.sessioncontext.attributes"
            ".mfaauthenticated AS mfa FROM {events} WHERE {in_range} AND eventname = 'GetObject'",
            day_range(DAY),
        ),
    )
    assert rows == [
        {
            "account": ACCOUNT_B,
            "region": "eu-west-1",
            "date": f"{DAY:%Y/%m/%d}",
            "path": str(
                lake / log_key(ACCOUNT_B, "eu-west-1", DAY, "a", prefix="org-trail/", org=ORG)
            ),
            "issuer": "Admin",
            "mfa": "true",
        }
    ]


async def test_recent_alerts_newest_first_at_or_above_the_severity(lake: Path) -> None:
    rows = await run(lake, query.recent_alerts(Severity.HIGH, 10, day_range(DAY)))
    assert [(row["eventname"], row["xpriority"]) for row in rows] == [
        ("StopLogging", "CRITICAL"),
        ("CreateUser", "HIGH"),
        ("ConsoleLogin", "CRITICAL"),
    ]
    assert rows[0]["xrules"] == ["cloudtrail-stopped", "defense-evasion"]
    assert rows[1]["user_name"] == "alice"
    assert rows[1]["principal_arn"] == f"arn:aws:iam::{ACCOUNT_A}:user/alice"
    critical = await run(lake, query.recent_alerts(Severity.CRITICAL, 1, day_range(DAY)))
    assert [row["eventname"] for row in critical] == ["StopLogging"]
    medium = await run(lake, query.recent_alerts(Severity.MEDIUM, 10, day_range(DAY)))
    assert len(medium) == 4


async def test_events_of_principal_by_user_name(lake: Path) -> None:
    rows = await run(lake, query.events_of_principal("alice", 100, day_range(DAY)))
    assert {row["eventname"] for row in rows} == {
        "CreateUser",
        "StopLogging",
        "PutBucketPolicy",
        "DescribeInstances",
        "RunInstances",
    }
    times = [row["eventtime"] for row in rows]
    assert times == sorted(times, reverse=True)


async def test_events_of_principal_by_role_session_and_arn(lake: Path) -> None:
    for who in ("Admin/alice-session", "alice-session", ROLE_ARN):
        rows = await run(lake, query.events_of_principal(who, 10, day_range(DAY)))
        assert [row["principal_arn"] for row in rows] == [ROLE_ARN], who
        assert rows[0]["identity_type"] == "AssumedRole"


async def test_events_of_principal_root(lake: Path) -> None:
    for who in ("root", "ROOT"):
        rows = await run(lake, query.events_of_principal(who, 10, day_range(DAY)))
        assert [(row["eventname"], row["identity_type"]) for row in rows] == [
            ("ConsoleLogin", "Root")
        ]


async def test_like_wildcards_in_a_principal_are_literal(lake: Path) -> None:
    # Unescaped, `a_ice` would match .../alice and `Admin/alice_session` the session ARN.
    for who in ("a_ice", "Admin/alice_session", "_lice"):
        assert await run(lake, query.events_of_principal(who, 10, day_range(DAY))) == []


async def test_events_from_ip_v4_and_v6(lake: Path) -> None:
    rows = await run(lake, query.events_from_ip("198.51.100.7", 10, day_range(DAY)))
    assert [row["eventname"] for row in rows] == ["GetObject"]
    rows = await run(lake, query.events_from_ip("2001:DB8:0::1", 10, day_range(DAY)))
    assert [(row["eventname"], row["awsregion"]) for row in rows] == [("RunInstances", "us-east-1")]


async def test_a_hostile_parameter_is_only_a_value(lake: Path) -> None:
    hostile = "' OR 1=1 --"
    sql = "SELECT eventid FROM {events} WHERE {in_range} AND useridentity.username = :who"
    assert await run(lake, raw_query(sql, day_range(DAY), who=hostile)) == []
    like = "SELECT eventid FROM {events} WHERE {in_range} AND eventname LIKE :pattern"
    assert await run(lake, raw_query(like, day_range(DAY), pattern="%' OR '1'='1")) == []
    # The same text stored in a record is found, as text.
    write_enriched(
        lake,
        [
            record(
                eventTime=at(DAY, "16:00:00"), userIdentity={"type": "IAMUser", "userName": hostile}
            )
        ],
        name="hostile",
    )
    rows = await run(lake, raw_query(sql, day_range(DAY), who=hostile))
    assert len(rows) == 1


# The relation


def as_athena(kind: ColumnType) -> athena_ddl.ColumnType:
    if isinstance(kind, str):
        return "MAP<STRING, STRING>" if kind.startswith("MAP") else "STRING"
    if isinstance(kind, list):
        return [as_athena(kind[0])]
    return {name.lower(): as_athena(inner) for name, inner in kind.items()}


def test_the_same_columns_as_the_athena_table() -> None:
    assert {key.lower(): as_athena(kind) for key, kind in COLUMNS.items()} == dict(
        athena_ddl.COLUMNS
    )


async def test_the_relation_exposes_lower_case_names_and_the_partitions(lake: Path) -> None:
    [row] = await run(
        lake, raw_query("SELECT * FROM {events} WHERE {in_range} LIMIT 1", day_range(DAY))
    )
    expected = [key.lower() for key in COLUMNS] + ["account", "region", "date", "$path"]
    assert list(row) == expected


# Translation and errors


def test_translation_keeps_placeholders_path_like_escape_and_structs() -> None:
    q = query.events_of_principal("alice", 5, day_range(DAY))
    sql, names = translate(q.sql)
    assert "$who" in sql
    assert "$arn_suffix" in sql
    assert "ESCAPE '\\'" in sql
    assert "useridentity.username" in sql
    assert names == {"first_day", "last_day", "range_start", "range_end", "who", "arn_suffix"}
    path_sql, _ = translate(query.event_by_id(TARGET_ID, day_range(DAY)).sql)
    assert path_sql.startswith('SELECT "$path" AS path')
    scalar, _ = translate(
        "SELECT json_extract_scalar(requestparameters, '$.userName') AS u FROM {events}"
    )
    assert "'$.userName'" in scalar


async def test_values_are_bound_by_name_even_where_sqlglot_reorders_arguments(lake: Path) -> None:
    # Trino date_add(unit, n, t) becomes `t + INTERVAL (n) unit`: the parameters swap places.
    sql = (
        "SELECT eventid FROM {events} WHERE {in_range}"
        " AND from_iso8601_timestamp(eventtime)"
        " >= date_add('second', :back, from_iso8601_timestamp(:until))"
        " AND eventname = :event_name"
    )
    rows = await run(
        lake,
        raw_query(
            sql, day_range(DAY), back=-60, until=at(DAY, "10:00:30"), event_name="CreateUser"
        ),
    )
    assert [row["eventid"] for row in rows] == [TARGET_ID]


async def test_an_unknown_column_is_one_line_query_error(lake: Path) -> None:
    with pytest.raises(QueryError) as caught:
        await run(
            lake, raw_query("SELECT nosuchcolumn FROM {events} WHERE {in_range}", day_range(DAY))
        )
    message = str(caught.value)
    assert "nosuchcolumn" in message
    assert "\n" not in message


async def test_sql_that_does_not_parse_is_a_query_error(lake: Path) -> None:
    with pytest.raises(QueryError, match="cannot translate"):
        await run(lake, raw_query("SELECT FROM WHERE {in_range} ((", day_range(DAY)))


async def test_a_missing_parameter_is_a_query_error(lake: Path) -> None:
    with pytest.raises(QueryError, match=":who"):
        await run(
            lake,
            raw_query(
                "SELECT 1 AS x FROM {events} WHERE {in_range} AND eventid = :who", day_range(DAY)
            ),
        )


async def test_a_slow_query_is_stopped(lake: Path) -> None:
    engine = DuckDBEngine(lake, timeout_s=0)
    with pytest.raises(QueryTimeout):
        await engine.run(query.event_by_id(TARGET_ID, day_range(DAY)))
    # The engine is still usable afterwards.
    assert len(await DuckDBEngine(lake).run(query.event_by_id(TARGET_ID, day_range(DAY)))) == 1


async def test_queries_run_concurrently_off_the_event_loop(lake: Path) -> None:
    engine = DuckDBEngine(lake)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    results = await asyncio.gather(
        *(engine.run(query.event_by_id(TARGET_ID, day_range(DAY))) for _ in range(4))
    )
    task.cancel()
    assert all(len(rows) == 1 for rows in results)
    assert ticks > 4


# Odd records


async def test_odd_records_do_not_break_the_query(tmp_path: Path) -> None:
    root = tmp_path / "enriched"
    big = {"policy": "x" * 3_000_000, "userName": "bob"}
    good = [
        record("A", eventTime=at(DAY, "01:00:00"), readOnly=True),
        record("B", eventTime=at(DAY, "01:00:01"), readOnly="true"),
        record("C", eventTime=at(DAY, "01:00:02"), readOnly=False, errorCode=404),
        record("D", eventTime=at(DAY, "01:00:03"), requestParameters=big),
        record(
            "E",
            eventTime=at(DAY, "01:00:04"),
            userIdentity={"type": "IAMUser", "userName": "Jürgen 日本 😀"},
        ),
        record("F", eventTime=at(DAY, "01:00:05"), resources="not a list", xrules="not a list"),
        record("G", eventTime=at(DAY, "01:00:06"), requestParameters='{"userName": "carol"}'),
        record("H", eventTime=at(DAY, "01:00:07"), userIdentity="not an object"),
        record(
            "I",
            eventTime=at(DAY, "01:00:08"),
            resources=[
                {"ARN": "arn:aws:s3:::b", "accountId": ACCOUNT_A, "type": "AWS::S3::Bucket"}
            ],
            requestParameters=None,
        ),
    ]
    lines = [orjson.dumps(item) for item in good]
    lines += [
        b'{"eventVersion": "1.09", "eventTime": "2026-03-10T01:00:09Z", "eventName": "trunc',
        b"not json at all",
        b"[1, 2, 3]",
        b'{"eventTime": "2026-03-10T01:00:10Z", "eventName": "\\ud800 lone surrogate"}',
        b"",
    ]
    write_lines(root / log_key(ACCOUNT_A, "us-east-1", DAY, "odd"), lines)
    rows = await run(
        root,
        raw_query(
            "SELECT eventname, readonly, errorcode, useridentity.username AS user_name,"
            " json_extract_scalar(requestparameters, '$.userName') AS requested,"
            " length(requestparameters) AS size, resources[1].arn AS resource, xrules"
            " FROM {events} WHERE {in_range} ORDER BY eventtime",
            day_range(DAY),
        ),
    )
    by_name = {row["eventname"]: row for row in rows}
    assert sorted(by_name) == list("ABCDEFGHI")  # the bad lines are rows of NULLs: no time
    assert [by_name[name]["readonly"] for name in "ABC"] == ["true", "true", "false"]
    assert by_name["C"]["errorcode"] == "404"
    assert by_name["D"]["requested"] == "bob"
    assert by_name["D"]["size"] > 3_000_000
    assert by_name["E"]["user_name"] == "Jürgen 日本 😀"
    assert by_name["F"]["resource"] is None  # a field of the wrong shape is NULL ...
    assert by_name["F"]["xrules"] is None
    assert by_name["F"]["user_name"] == "alice"  # ... and the rest of the record stays
    assert by_name["G"]["requested"] == "carol"  # JSON kept as text in a string, as in Athena
    assert by_name["H"]["user_name"] is None
    assert by_name["I"]["resource"] == "arn:aws:s3:::b"
    assert by_name["I"]["requested"] is None

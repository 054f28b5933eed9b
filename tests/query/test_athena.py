"""Athena through aioboto3 against moto's server (no mocking of aioboto3/botocore), and the
table's DDL checked with sqlglot and against the processed key layout.

moto runs no SQL: results are registered through its static query-results API, and states are
stepped with its state manager. Two things real Athena does that moto does not are added to moto's
own response handlers (in this process): `StateChangeReason` on a failed query, and paging of
GetQueryResults by MaxResults/NextToken.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import sqlglot
from botocore.exceptions import ClientError
from builders import ACCOUNT_A, ACCOUNT_B, log_bytes, log_key, record
from cli_env import use_env
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlglot import exp

from umbrellabot import cli
from umbrellabot.app import athena_tables
from umbrellabot.app.wiring import open_athena
from umbrellabot.config import Settings
from umbrellabot.model.layout import RegionFolder, output_key
from umbrellabot.query import athena
from umbrellabot.query import queries as query
from umbrellabot.query.athena import (
    AthenaAccessError,
    Backoff,
    athena_literal,
    convert,
    parse_array,
)
from umbrellabot.query.athena_ddl import (
    COLUMNS,
    COMMERCIAL_REGIONS,
    TableLayout,
    TableLayoutError,
    create_table_ddl,
    projection_update_ddl,
)
from umbrellabot.query.athena_layouts import layouts_from_folders
from umbrellabot.query.queries import QueryError, QueryTimeout, TimeRange

MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"
FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05)
RANGE = TimeRange(
    datetime(2026, 11, 28, 10, 0, tzinfo=UTC), datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
)
HOSTILE = "' OR 1=1 --"
ORG = "o-abcd123456"
DUCKDB = duckdb.connect()


def moto_athena() -> Any:
    from moto.athena.models import athena_backends

    return athena_backends[MOTO_ACCOUNT][REGION]


def post(endpoint: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{endpoint}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


def varchar(*values: str | None) -> dict[str, Any]:
    return {"Data": [{} if value is None else {"VarCharValue": value} for value in values]}


def register_results(endpoint: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> None:
    """One result for the next query, through moto's documented static API; the first row is
    the header row, as Athena returns it."""
    header = varchar(*(name for name, _ in columns))
    info = [{"Name": name, "Label": name, "Type": kind} for name, kind in columns]
    body = {
        "account_id": MOTO_ACCOUNT,
        "region": REGION,
        "results": [{"rows": [header, *(varchar(*row) for row in rows)], "column_info": info}],
    }
    post(endpoint, "/moto-api/static/athena/query-results", body)


@pytest.fixture
def moto(aws_env: dict[str, str]) -> Iterator[Callable[[int], None]]:
    """A clean Athena backend; the returned function makes executions advance one state per
    `times` GetQueryExecution calls (QUEUED -> RUNNING -> SUCCEEDED) until the test ends."""
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    backend = moto_athena()
    backend.query_results_queue.clear()

    def manual(times: int) -> None:
        transition = {"progression": "manual", "times": times}
        post(
            endpoint,
            "/moto-api/state-manager/set-transition",
            {"model_name": "athena::execution", "transition": transition},
        )

    yield manual
    post(endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    backend.query_results_queue.clear()


@pytest.fixture
def sync_athena(aws_env: dict[str, str]) -> Any:
    return boto3.client("athena", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


def settings_for(bucket: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cloudtrail_bucket_name": bucket,
        "state_dir": tmp_path / "state",
        "aws_region": REGION,
    }
    values.update(overrides)
    return Settings(**values)


def hostile_query() -> query.Query:
    return query.events_query(
        "hostile",
        "SELECT eventid, eventtime FROM {events} WHERE {in_range} AND eventname = :event_name",
        RANGE,
        event_name=HOSTILE,
    )


# The engine against moto


async def test_parameters_travel_apart_from_the_sql(
    moto: Callable[[int], None], sync_athena: Any, bucket: str, tmp_path: Path, aws_env: Any
) -> None:
    columns = [
        ("eventid", "varchar"),
        ("n", "bigint"),
        ("ok", "boolean"),
        ("xrules", "array"),
        ("score", "double"),
        ("errorcode", "varchar"),
    ]
    register_results(
        aws_env["AWS_ENDPOINT_URL"],
        columns,
        [
            ["e-1", "42", "true", "[iam-user-created, root-login]", "1.5", None],
            ["e-2", "-7", "false", "[]", "2", "AccessDenied"],
        ],
    )
    moto(2)
    states: list[str] = []
    settings = settings_for(bucket, tmp_path)
    async with open_athena(
        settings, backoff=FAST, on_state=lambda _, s: states.append(s)
    ) as engine:
        rows = await engine.run(hostile_query())

    assert states == ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert rows == [
        {
            "eventid": "e-1",
            "n": 42,
            "ok": True,
            "xrules": ["iam-user-created", "root-login"],
            "score": 1.5,
            "errorcode": None,
        },
        {
            "eventid": "e-2",
            "n": -7,
            "ok": False,
            "xrules": [],
            "score": 2.0,
            "errorcode": "AccessDenied",
        },
    ]
    (query_id,) = sync_athena.list_query_executions()["QueryExecutionIds"][-1:]
    sent = sync_athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    sql = sent["Query"]
    assert sql == (
        'SELECT eventid, eventtime FROM "default"."cloudtrail_enriched" WHERE "date" BETWEEN ?'
        " AND ? AND eventtime >= ? AND eventtime < ? AND eventname = ?"
    )
    assert "1=1" not in sql and "2026" not in sql
    assert sent["ExecutionParameters"] == [
        "'2026/11/28'",
        "'2026/11/29'",
        "'2026-11-28T10:00:00Z'",
        "'2026-11-29T10:00:00Z'",
        "''' OR 1=1 --'",
    ]
    assert sent["QueryExecutionContext"] == {"Database": "default"}
    assert sent["WorkGroup"] == "primary"
    output = sent["ResultConfiguration"]["OutputLocation"]
    assert output.startswith(f"s3://{bucket}/athena-results/")


def substituted(sql: str, parameters: list[str]) -> str:
    """What Athena evaluates: each `?` replaced, in order, by its parameter's literal."""
    pieces = sql.split("?")
    assert len(pieces) == len(parameters) + 1
    return pieces[0] + "".join(p + rest for p, rest in zip(parameters, pieces[1:], strict=True))


async def test_the_hostile_value_stays_one_string_literal(
    moto: Callable[[int], None], sync_athena: Any, bucket: str, tmp_path: Path
) -> None:
    async with open_athena(settings_for(bucket, tmp_path), backoff=FAST) as engine:
        assert await engine.run(hostile_query()) == []  # nothing registered: no rows
    (query_id,) = sync_athena.list_query_executions()["QueryExecutionIds"][-1:]
    sent = sync_athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    tree = sqlglot.parse_one(substituted(sent["Query"], sent["ExecutionParameters"]), read="trino")
    assert tree.find(exp.Or) is None
    strings = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
    assert HOSTILE in strings


@pytest.mark.parametrize(
    "logical",
    [
        query.event_by_id("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", RANGE),
        query.recent_alerts(query.Severity.HIGH, 20, RANGE),
        query.events_of_principal("arn:aws:iam::111111111111:user/alice", 20, RANGE),
        query.events_from_ip("203.0.113.7", 20, RANGE),
    ],
    ids=lambda q: q.name,
)
async def test_every_logical_query_restricts_the_partitions(
    logical: query.Query, moto: Callable[[int], None], sync_athena: Any, bucket: str, tmp_path: Path
) -> None:
    async with open_athena(settings_for(bucket, tmp_path), backoff=FAST) as engine:
        await engine.run(logical)
    (query_id,) = sync_athena.list_query_executions()["QueryExecutionIds"][-1:]
    sent = sync_athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert '"date" BETWEEN ? AND ?' in sent["Query"]
    assert ":" not in sent["Query"].replace("arn:", "")  # no named parameter left
    assert sent["ExecutionParameters"][:2] == ["'2026/11/28'", "'2026/11/29'"]
    for value in logical.params.values():
        assert str(value) not in sent["Query"]
        assert athena_literal(value) in sent["ExecutionParameters"]


@pytest.fixture
def failure_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto leaves StateChangeReason out of GetQueryExecution; add it as Athena does."""
    from moto.athena.responses import AthenaResponse

    original = AthenaResponse.get_query_execution

    def with_reason(self: Any) -> str:
        body = json.loads(original(self))
        execution = self.athena_backend.executions[body["QueryExecution"]["QueryExecutionId"]]
        reason = getattr(execution, "state_change_reason", None)
        if reason:
            body["QueryExecution"]["Status"]["StateChangeReason"] = reason
            body["QueryExecution"]["Status"]["AthenaError"] = {
                "ErrorCategory": 2,
                "ErrorType": 1100,
                "ErrorMessage": reason,
            }
        return json.dumps(body)

    monkeypatch.setattr(AthenaResponse, "get_query_execution", with_reason)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("FAILED", "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"),
        ("CANCELLED", "Query was cancelled by user"),
    ],
)
async def test_failed_or_cancelled_query_carries_athenas_reason(
    state: str,
    reason: str,
    moto: Callable[[int], None],
    failure_reasons: None,
    bucket: str,
    tmp_path: Path,
) -> None:
    moto(1)
    seen: list[str] = []

    def fail_while_running(query_id: str, current: str) -> None:
        seen.append(current)
        if current == "RUNNING":  # what Athena would decide; moto never fails by itself
            execution = moto_athena().executions[query_id]
            execution.status = state
            execution.state_change_reason = reason

    settings = settings_for(bucket, tmp_path)
    async with open_athena(settings, backoff=FAST, on_state=fail_while_running) as engine:
        with pytest.raises(QueryError) as caught:
            await engine.run(hostile_query())
    assert not isinstance(caught.value, QueryTimeout)
    assert seen == ["RUNNING", state]
    message = str(caught.value)
    assert f"(hostile) {state}: {reason}" in message
    assert message.count(reason) == 1  # AthenaError repeats it; said once
    assert "\n" not in message


async def test_timeout_stops_the_query(
    moto: Callable[[int], None], sync_athena: Any, bucket: str, tmp_path: Path
) -> None:
    moto(1_000_000)  # never leaves QUEUED
    polls: list[str] = []
    settings = settings_for(bucket, tmp_path, athena_timeout_s=0.2)
    async with open_athena(settings, backoff=FAST, on_state=lambda q, s: polls.append(q)) as engine:
        with pytest.raises(QueryTimeout) as caught:
            await engine.run(hostile_query())
    query_id = polls[0]
    assert len(polls) >= 3 and set(polls) == {query_id}
    assert f"Athena query {query_id} (hostile) did not finish within 0.2 s" in str(caught.value)
    assert "stopped" in str(caught.value)
    status = sync_athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
    assert status["State"] == "CANCELLED"  # what moto reports after StopQueryExecution


async def test_a_cancelled_caller_stops_the_query(
    moto: Callable[[int], None], sync_athena: Any, bucket: str, tmp_path: Path
) -> None:
    moto(1_000_000)
    polled = asyncio.Event()
    ids: list[str] = []

    def observe(query_id: str, _: str) -> None:
        ids.append(query_id)
        polled.set()

    async with open_athena(
        settings_for(bucket, tmp_path), backoff=FAST, on_state=observe
    ) as engine:
        task = asyncio.create_task(engine.run(hostile_query()))
        await polled.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    status = sync_athena.get_query_execution(QueryExecutionId=ids[0])["QueryExecution"]["Status"]
    assert status["State"] == "CANCELLED"


@pytest.fixture
def paged_results(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """moto returns every row at once; page them by MaxResults/NextToken as Athena does."""
    from moto.athena.responses import AthenaResponse

    calls: list[tuple[int, int]] = []

    def paged(self: Any) -> str:
        result = self.athena_backend.get_query_results(self._get_param("QueryExecutionId"))
        size = int(self._get_param("MaxResults") or 1000)
        start = int(self._get_param("NextToken") or 0)
        body = result.to_dict()
        rows = body["ResultSet"]["Rows"]
        body["ResultSet"]["Rows"] = rows[start : start + size]
        if start + size < len(rows):
            body["NextToken"] = str(start + size)
        calls.append((start, size))
        return json.dumps(body)

    monkeypatch.setattr(AthenaResponse, "get_query_results", paged)
    return calls


async def test_results_are_read_page_by_page(
    moto: Callable[[int], None],
    paged_results: list[tuple[int, int]],
    bucket: str,
    tmp_path: Path,
    aws_env: Any,
) -> None:
    register_results(
        aws_env["AWS_ENDPOINT_URL"],
        [("eventid", "varchar"), ("n", "integer")],
        [[f"e-{n}", str(n)] for n in range(2500)],
    )
    async with open_athena(settings_for(bucket, tmp_path), backoff=FAST) as engine:
        rows = await engine.run(hostile_query())
    assert paged_results == [(0, 1000), (1000, 1000), (2000, 1000)]
    assert len(rows) == 2500  # the header row (first row of the first page) left out, once
    assert rows[0] == {"eventid": "e-0", "n": 0} and rows[-1] == {"eventid": "e-2499", "n": 2499}


async def test_small_pages(
    moto: Callable[[int], None],
    paged_results: list[tuple[int, int]],
    bucket: str,
    tmp_path: Path,
    aws_env: Any,
) -> None:
    register_results(
        aws_env["AWS_ENDPOINT_URL"], [("eventid", "varchar")], [["a"], ["b"], ["c"], ["d"]]
    )
    settings = settings_for(bucket, tmp_path)
    async with open_athena(settings, backoff=FAST, page_size=2) as engine:
        rows = await engine.run(hostile_query())
    assert [row["eventid"] for row in rows] == ["a", "b", "c", "d"]
    assert len(paged_results) == 3


async def test_unknown_workgroup_is_one_clear_error(
    moto: Callable[[int], None], bucket: str, tmp_path: Path
) -> None:
    settings = settings_for(bucket, tmp_path, athena_workgroup="nope")
    async with open_athena(settings, backoff=FAST) as engine:
        with pytest.raises(QueryError) as caught:
            await engine.run(hostile_query())
    assert str(caught.value) == (
        "athena:StartQueryExecution in workgroup 'nope': InvalidRequestException:"
        " WorkGroup does not exist"
    )


def test_access_denied_is_an_access_error() -> None:
    err = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "User: x is not authorized.\n"}},
        "StartQueryExecution",
    )
    described = athena._describe(err, "StartQueryExecution", "primary")
    assert isinstance(described, AthenaAccessError)
    assert str(described).startswith(
        "Athena refused athena:StartQueryExecution in workgroup 'primary':"
        " AccessDeniedException: User: x is not authorized. Check the credentials"
    )


# Values, as Athena wants them in ExecutionParameters


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("alice", "'alice'"),
        (HOSTILE, "''' OR 1=1 --'"),
        ("it's", "'it''s'"),
        ("back\\slash", "'back\\slash'"),
        ("", "''"),
        (42, "42"),
        (-1.5, "-1.5"),
    ],
)
def test_athena_literal(value: query.ParamValue, literal: str) -> None:
    assert athena_literal(value) == literal


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00")))
def test_any_string_stays_one_literal(value: str) -> None:
    literal = athena_literal(value)
    parsed = sqlglot.parse_one(literal, read="trino")
    assert isinstance(parsed, exp.Literal) and parsed.is_string and parsed.this == value
    assert DUCKDB.execute(f"SELECT {literal}").fetchall() == [(value,)]  # a SQL engine agrees


def test_non_finite_numbers_refused() -> None:
    with pytest.raises(ValueError):
        athena_literal(float("nan"))


def test_convert_and_arrays() -> None:
    assert convert(None, "bigint") is None
    assert convert("7", "tinyint") == 7
    assert convert("0.25", "decimal") == 0.25
    assert convert("TRUE", "boolean") is True
    assert convert("2026-11-29", "date") == "2026-11-29"
    assert convert("[a]", "array") == ["a"]
    assert parse_array("[]") == [] and parse_array("[x, y]") == ["x", "y"]


def test_backoff_doubles_to_its_ceiling() -> None:
    delays = Backoff(0.2, 2.0, 1.0).delays()
    assert [next(delays) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


# The table: DDL parsed by sqlglot, projection against the processed key layout


def plain_properties(node: exp.Expression) -> dict[str, str]:
    """'key'='value' pairs under `node` (not the typed properties such as LOCATION)."""
    return {
        prop.this.this: prop.args["value"].this
        for prop in node.find_all(exp.Property)
        if type(prop) is exp.Property
    }


def table_properties(ddl: str) -> tuple[exp.Create, dict[str, str]]:
    tree = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(tree, exp.Create) and tree.kind == "TABLE"
    properties = {
        prop.this.this: prop.args["value"].this
        for prop in tree.args["properties"].expressions
        if type(prop) is exp.Property
    }
    return tree, properties


def key_prefix_from_template(template: str, account: str, region: str, day: date) -> str:
    filled = (
        template.replace("${account}", account)
        .replace("${region}", region)
        .replace("${date}", f"{day:%Y/%m/%d}")
    )
    return filled + "/"


def test_ddl_parses_with_every_column_serde_and_projection() -> None:
    layout = TableLayout("", None, (ACCOUNT_A,))
    ddl = create_table_ddl(
        database="default",
        table="cloudtrail_enriched",
        bucket="my-bucket",
        processed_prefix="processed/",
        layout=layout,
        start=date(2024, 1, 1),
    )
    tree, properties = table_properties(ddl)
    assert tree.find(exp.ExternalProperty) is not None
    assert tree.args.get("exists") is True  # IF NOT EXISTS
    assert (
        tree.this.this.name == "cloudtrail_enriched" and tree.this.this.args["db"].name == "default"
    )
    names = [column.name for column in tree.this.expressions]
    assert names == [name for name, _ in COLUMNS]
    for name in ("useridentity", "eventtime", "requestparameters", "responseelements", "resources"):
        assert name in names
    assert names[-3:] == ["xpriority", "xrules", "xcountry_code"]
    kinds = {column.name: column.args["kind"] for column in tree.this.expressions}
    assert kinds["useridentity"].is_type(exp.DataType.Type.STRUCT)
    for text_column in ("requestparameters", "responseelements", "additionaleventdata"):
        assert kinds[text_column].is_type(exp.DataType.Type.TEXT)
    assert kinds["xrules"].is_type(exp.DataType.Type.ARRAY)
    session = kinds["useridentity"].find(exp.ColumnDef)
    assert session is not None
    nested = {d.name for d in kinds["useridentity"].find_all(exp.ColumnDef)}
    assert {"sessioncontext", "sessionissuer", "webidfederationdata", "sourceidentity"} <= nested
    assert {"onbehalfof", "invokedby", "ec2roledelivery", "mfaauthenticated"} <= nested

    partitions = tree.find(exp.PartitionedByProperty)
    assert partitions is not None
    assert [c.name for c in partitions.this.expressions] == ["account", "region", "date"]
    serde = tree.find(exp.RowFormatSerdeProperty)
    assert serde is not None and serde.this.this == "org.openx.data.jsonserde.JsonSerDe"
    serde_properties = plain_properties(serde)
    assert serde_properties == {"ignore.malformed.json": "true"}
    location = tree.find(exp.LocationProperty)
    assert location is not None and location.this.this == "s3://my-bucket/processed/AWSLogs/"

    assert properties == {
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": ACCOUNT_A,
        "projection.region.type": "enum",
        "projection.region.values": ",".join(COMMERCIAL_REGIONS),
        "projection.date.type": "date",
        "projection.date.format": "yyyy/MM/dd",
        "projection.date.range": "2024/01/01,NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        "storage.location.template": (
            "s3://my-bucket/processed/AWSLogs/${account}/CloudTrail/${region}/${date}"
        ),
        "umbrellabot.layout": "AWSLogs/",
    }


@pytest.mark.parametrize(
    ("trail_prefix", "org"),
    [("", None), ("", ORG), ("custom/trail/", None), ("custom/", ORG)],
    ids=["single-account", "organization", "custom-prefix", "custom-prefix-organization"],
)
async def test_projection_matches_the_processed_layout(
    trail_prefix: str, org: str | None, s3: Any, bucket: str, tmp_path: Path
) -> None:
    day = date(2026, 11, 29)
    keys = [
        log_key(ACCOUNT_A, "us-east-1", day, "a", prefix=trail_prefix, org=org),
        log_key(ACCOUNT_B, "eu-west-1", day, "b", prefix=trail_prefix, org=org),
    ]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes([record()]))
    settings = settings_for(bucket, tmp_path, cloudtrail_processed_prefix="enriched/x")

    [layout] = await athena_tables.discover_layouts(settings)  # discovery from the bucket root

    assert layout == TableLayout(trail_prefix, org, (ACCOUNT_A, ACCOUNT_B), COMMERCIAL_REGIONS)
    [ddl] = await athena_tables.table_ddls(settings, [layout])
    _, properties = table_properties(ddl)
    template = properties["storage.location.template"]
    for key, account, region in zip(
        keys, (ACCOUNT_A, ACCOUNT_B), ("us-east-1", "eu-west-1"), strict=True
    ):
        processed = f"s3://{bucket}/{output_key(settings.cloudtrail_processed_prefix, key)}"
        folder = key_prefix_from_template(template, account, region, day)
        assert processed.startswith(folder)
        assert "/" not in processed.removeprefix(folder)  # the file sits right in the day folder
    assert set(properties["projection.account.values"].split(",")) == {ACCOUNT_A, ACCOUNT_B}
    assert {"us-east-1", "eu-west-1"} <= set(properties["projection.region.values"].split(","))


def test_discovered_regions_outside_the_list_are_added() -> None:
    folder = RegionFolder("AWSLogs/111111111111/CloudTrail/xx-test-9/", ACCOUNT_A, "xx-test-9")
    [layout] = layouts_from_folders([folder])
    assert "xx-test-9" in layout.regions


async def test_empty_bucket_uses_the_initial_prefix_or_says_what_to_set(
    bucket: str, tmp_path: Path
) -> None:
    named = settings_for(
        bucket, tmp_path, cloudtrail_initial_prefix=f"custom/AWSLogs/{ORG}/{ACCOUNT_B}/CloudTrail/"
    )
    [layout] = await athena_tables.discover_layouts(named)
    assert (layout.trail_prefix, layout.org, layout.accounts) == ("custom/", ORG, (ACCOUNT_B,))
    with pytest.raises(TableLayoutError, match="no CloudTrail logs found under"):
        await athena_tables.discover_layouts(settings_for(bucket, tmp_path))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"processed_prefix": "it's/"}, 'CLOUDTRAIL_PROCESSED_PREFIX "it\'s/" has characters'),
        ({"processed_prefix": ""}, "CLOUDTRAIL_PROCESSED_PREFIX is empty"),
        ({"bucket": "Bad_Bucket"}, "is not an S3 bucket name"),
        ({"table": "x`y"}, "is not an Athena database or table name"),
    ],
)
def test_ddl_refuses_what_it_cannot_quote(overrides: dict[str, str], message: str) -> None:
    arguments = {
        "database": "default",
        "table": "t",
        "bucket": "my-bucket",
        "processed_prefix": "processed/",
        **overrides,
    }
    with pytest.raises(TableLayoutError) as caught:
        create_table_ddl(layout=TableLayout("", None, (ACCOUNT_A,)), **arguments)
    assert message in str(caught.value)


def test_projection_update_parses() -> None:
    ddl = projection_update_ddl(
        database="trails",
        table="t",
        bucket="my-bucket",
        processed_prefix="processed/",
        layout=TableLayout("", ORG, (ACCOUNT_A, ACCOUNT_B), ("us-east-1",)),
    )
    tree = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(tree, exp.Alter)
    values = plain_properties(tree)
    assert values == {
        "projection.account.values": f"{ACCOUNT_A},{ACCOUNT_B}",
        "projection.region.values": "us-east-1",
        "storage.location.template": (
            f"s3://my-bucket/processed/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{date}}"
        ),
        "umbrellabot.layout": f"AWSLogs/{ORG}/",
    }


# The commands


def test_cli_ddl_prints_the_table(
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=log_key(ACCOUNT_A, "us-east-1", date(2026, 11, 29), "a", org=ORG),
        Body=log_bytes([record()]),
    )
    use_env(monkeypatch, tmp_path, CLOUDTRAIL_BUCKET_NAME=bucket, AWS_REGION=REGION)
    assert cli.main(["athena", "ddl", "--since", "2025-01-01"]) == cli.EXIT_OK
    _, properties = table_properties(capsys.readouterr().out)
    assert properties["projection.date.range"] == "2025/01/01,NOW"
    assert properties["storage.location.template"].startswith(
        f"s3://{bucket}/processed/AWSLogs/{ORG}/${{account}}/"
    )


def test_cli_needs_a_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, tmp_path)
    monkeypatch.delenv("CLOUDTRAIL_BUCKET_NAME", raising=False)
    assert cli.main(["athena", "ddl"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("umbrellabot: CLOUDTRAIL_BUCKET_NAME is not set") and err.count("\n") == 1


def run_setup(
    sync_athena: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **env: str,
) -> tuple[str, list[str], list[dict[str, Any]]]:
    """`umbrellabot athena setup` into a new database: its name, the lines printed and the
    query executions it sent."""
    database = f"trails_{uuid.uuid4().hex[:8]}"
    use_env(
        monkeypatch,
        tmp_path,
        CLOUDTRAIL_BUCKET_NAME=bucket,
        AWS_REGION=REGION,
        ATHENA_DATABASE=database,
        **env,
    )
    before = len(sync_athena.list_query_executions()["QueryExecutionIds"])
    assert cli.main(["athena", "setup"]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    ids = sync_athena.list_query_executions()["QueryExecutionIds"][before:]
    sent = [sync_athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    return database, out, sent


def test_cli_setup_runs_the_statements(
    moto: Callable[[int], None],
    s3: Any,
    sync_athena: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=log_key(ACCOUNT_A, "us-east-1", date(2026, 11, 29), "a"),
        Body=log_bytes([record()]),
    )
    database, out, sent = run_setup(sync_athena, bucket, tmp_path, monkeypatch, capsys)
    assert [line.split(":")[0] for line in out] == [
        f"database {database}",
        f"table {database}.cloudtrail_enriched",
        f"table {database}.cloudtrail_enriched",
        "no CloudTrail-Insight folders in the bucket yet",
    ]
    assert f"projection set to accounts {ACCOUNT_A}," in out[2]
    assert "(cloudtrail_insights) is made by the first setup after they appear" in out[3]
    assert [q["Query"].split("(")[0].split("`")[0] for q in sent] == [
        "CREATE DATABASE IF NOT EXISTS ",
        "CREATE EXTERNAL TABLE IF NOT EXISTS ",
        "ALTER TABLE ",
    ]
    assert all("ExecutionParameters" not in q for q in sent)
    databases = sync_athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]
    assert database in {d["Name"] for d in databases}


def test_cli_setup_makes_the_insights_table_beside_the_events_table(
    moto: Callable[[int], None],
    s3: Any,
    sync_athena: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    day = date(2026, 11, 29)
    event_log = log_key(ACCOUNT_A, "us-east-1", day, "a")
    insight = event_log.replace("/CloudTrail/", "/CloudTrail-Insight/").replace(
        "_CloudTrail_", "_CloudTrail-Insight_"
    )
    for key in (event_log, insight):
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes([record()]))
    database, out, sent = run_setup(
        sync_athena, bucket, tmp_path, monkeypatch, capsys, ATHENA_INSIGHTS_TABLE="unusual_activity"
    )
    assert [line.split(":")[0] for line in out] == [
        f"database {database}",
        f"table {database}.cloudtrail_enriched",
        f"table {database}.cloudtrail_enriched",
        f"table {database}.unusual_activity",
        f"table {database}.unusual_activity",
    ]
    insights_ddl = next(
        q["Query"] for q in sent if "CREATE" in q["Query"] and "unusual" in q["Query"]
    )
    events_ddl = next(
        q["Query"] for q in sent if "CREATE" in q["Query"] and "enriched" in q["Query"]
    )
    for ddl, key in ((insights_ddl, insight), (events_ddl, event_log)):
        _, properties = table_properties(ddl)
        folder = key_prefix_from_template(
            properties["storage.location.template"], ACCOUNT_A, "us-east-1", day
        )
        processed = f"s3://{bucket}/{output_key('processed/', key)}"
        assert processed.startswith(folder) and "/" not in processed.removeprefix(folder)
    assert "insightdetails STRING" in insights_ddl

    capsys.readouterr()
    assert cli.main(["athena", "ddl"]) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert printed.count("CREATE EXTERNAL TABLE") == 2 and "CloudTrail-Insight/${region}" in printed


def test_cli_setup_refused_is_one_line_and_exit_3(
    moto: Callable[[int], None],
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=log_key(ACCOUNT_A, "us-east-1", date(2026, 11, 29), "a"),
        Body=log_bytes([record()]),
    )
    use_env(
        monkeypatch,
        tmp_path,
        CLOUDTRAIL_BUCKET_NAME=bucket,
        AWS_REGION=REGION,
        ATHENA_WORKGROUP="missing",
    )
    assert cli.main(["athena", "setup"]) == cli.EXIT_CANNOT_RUN
    err = capsys.readouterr().err
    assert err == (
        "umbrellabot: athena:StartQueryExecution in workgroup 'missing':"
        " InvalidRequestException: WorkGroup does not exist\n"
    )


async def test_a_query_starting_is_not_an_info_line(
    moto: Callable[[int], None], bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cycle runs several queries: their start is DEBUG, so INFO has one line per cycle."""
    with caplog.at_level(logging.DEBUG, logger="umbrellabot.query.athena"):
        async with open_athena(settings_for(bucket, tmp_path), backoff=FAST) as engine:
            await engine.run(hostile_query())
    started = [r for r in caplog.records if "started" in r.getMessage()]
    assert started and all(r.levelno == logging.DEBUG for r in started)

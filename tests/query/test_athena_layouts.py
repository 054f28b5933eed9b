"""Two layouts in one bucket (a per-account trail beside the organization trail, Control Tower's
prefix beside an older trail): one Athena table per layout, named by `athena setup`, and every
lookup and detection reading all of them.

moto runs no DDL, so `glue_catalog.play_ddl` does to moto's Glue catalog what Athena's DDL does
to the real one (a table with its TBLPROPERTIES as Parameters), from the statements sent.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import sqlglot
from builders import ACCOUNT_A, ACCOUNT_B, log_bytes, log_key, record
from cli_env import use_env
from faults.fault_proxy import started
from glue_catalog import executions, play_new_ddl
from sqlglot import exp

from umbrellabot import cli
from umbrellabot.app import wiring
from umbrellabot.app.projection import ProjectionWatch
from umbrellabot.config import Settings
from umbrellabot.model.layout import RegionFolder
from umbrellabot.model.severity import Severity
from umbrellabot.query import duckdb_engine
from umbrellabot.query import queries as query
from umbrellabot.query.athena_catalog import CatalogTables, glue_client
from umbrellabot.query.athena_ddl import COMMERCIAL_REGIONS, TableLayout
from umbrellabot.query.athena_layouts import (
    events_relation,
    layout_tables,
    layouts_from_folders,
)
from umbrellabot.query.detections import default_detections_path, load_detections
from umbrellabot.query.queries import QueryError, TimeRange

REGION = "us-east-1"
ORG = "o-abcd123456"
ACCOUNT_C = "333333333333"
DAY = date(2026, 11, 29)
RANGE = TimeRange(datetime(2026, 11, 29, 0, 0, tzinfo=UTC), datetime(2026, 11, 30, 0, tzinfo=UTC))


def folder(account: str, *, prefix: str = "", org: str | None = None) -> RegionFolder:
    org_part = f"{org}/" if org else ""
    return RegionFolder(
        f"{prefix}AWSLogs/{org_part}{account}/CloudTrail/{REGION}/", account, REGION, org
    )


# Names and layouts (pure)


def test_each_layout_gets_a_table_and_one_layout_keeps_the_plain_name() -> None:
    folders = [
        folder(ACCOUNT_A),  # a per-account trail, before the organization trail
        folder(ACCOUNT_B, org=ORG),
        folder(ACCOUNT_A, org=ORG),
        folder(ACCOUNT_C, prefix=f"{ORG}/", org=ORG),  # Control Tower's
        RegionFolder(f"AWSLogs/{ACCOUNT_A}/CloudTrail/xx-test-9/", ACCOUNT_A, "xx-test-9"),
    ]
    layouts = layouts_from_folders(folders)
    assert [(layout.folder, layout.accounts) for layout in layouts] == [
        (f"AWSLogs/{ORG}/", (ACCOUNT_A, ACCOUNT_B)),
        (f"{ORG}/AWSLogs/{ORG}/", (ACCOUNT_C,)),
        ("AWSLogs/", (ACCOUNT_A,)),
    ]
    assert all("xx-test-9" in layout.regions for layout in layouts)  # every region seen anywhere
    tables = layout_tables("cloudtrail_enriched", layouts)
    assert [(table.name, table.layout.folder) for table in tables] == [
        ("cloudtrail_enriched", f"AWSLogs/{ORG}/"),  # the organization trail's
        ("cloudtrail_enriched__o_abcd123456_o_abcd123456", f"{ORG}/AWSLogs/{ORG}/"),
        ("cloudtrail_enriched__awslogs", "AWSLogs/"),
    ]
    [alone] = layout_tables("cloudtrail_enriched", layouts_from_folders([folder(ACCOUNT_A)]))
    assert alone.name == "cloudtrail_enriched"  # a bucket of one layout: the table it had


def test_a_layout_keeps_the_table_that_reads_it() -> None:
    per_account = TableLayout("", None, (ACCOUNT_A,))
    organization = TableLayout("", ORG, (ACCOUNT_A, ACCOUNT_B))
    template = "s3://b/processed/AWSLogs/${account}/CloudTrail/${region}/${date}"

    def location(layout: TableLayout) -> str:
        return f"s3://b/processed/{layout.folder}${{account}}/CloudTrail/${{region}}/${{date}}"

    for existing in (
        {"t": {"umbrellabot.layout": "AWSLogs/"}},
        {"t": {"storage.location.template": template}},  # made before the layout property
    ):
        tables = layout_tables("t", [organization, per_account], existing, location)
        assert [(table.name, table.layout) for table in tables] == [
            ("t__o_abcd123456", organization),
            ("t", per_account),  # never pointed at the organization trail's logs
        ]
    # A table of a layout no longer in the bucket keeps its name, and nobody else takes it.
    gone = {"t": {"umbrellabot.layout": "old/AWSLogs/"}, "t__awslogs": {"umbrellabot.layout": "x"}}
    names = [table.name for table in layout_tables("t", [organization, per_account], gone)]
    assert names[0] == "t__o_abcd123456" and names[1].startswith("t__awslogs_")
    assert len(names[1]) == len("t__awslogs_") + 8


def test_names_that_would_clash_or_run_long_stay_apart_and_valid() -> None:
    one, two = (TableLayout(prefix, None, (ACCOUNT_A,)) for prefix in ("a-b/", "a_b/"))
    first = TableLayout("", ORG, (ACCOUNT_A,))
    tables = layout_tables("t", [one, two, first])
    names = [table.name for table in tables]
    assert names[0] == "t" and len(set(names)) == 3
    assert all(name.startswith("t__a_b_") and len(name) == len("t__a_b_") + 8 for name in names[1:])
    deep = TableLayout("x" * 60 + "/" + "y" * 60 + "/", None, (ACCOUNT_A,))
    [_, long] = layout_tables("cloudtrail_enriched", [first, deep])
    assert len(long.name) <= 128 and long.name.startswith("cloudtrail_enriched__xxx")
    with pytest.raises(ValueError, match="is not an Athena database or table name"):
        layout_tables("bad`name", [first])


def test_the_relation_is_one_table_or_a_union_of_the_same_columns() -> None:
    assert events_relation("trails", ["t"]) == '"trails"."t"'
    relation = events_relation("trails", ["t", "t__awslogs"])
    tree = sqlglot.parse_one(f"SELECT eventid FROM {relation}", read="trino")
    union = tree.find(exp.Union)
    assert union is not None and union.args.get("distinct") is False  # UNION ALL
    selects = list(tree.find_all(exp.Select))[1:]
    tables = [s.find(exp.Table) for s in selects]
    assert [(t.db, t.name) for t in tables if t is not None] == [
        ("trails", "t"),
        ("trails", "t__awslogs"),
    ]
    columns = [[c.sql() for c in s.expressions] for s in selects]
    assert columns[0] == columns[1] and columns[0][-4:] == [
        '"account"',
        '"region"',
        '"date"',
        '"$path"',
    ]


def test_every_default_detection_reads_the_union_as_trino() -> None:
    relation = events_relation("trails", ["t", "t__awslogs"])
    detections = load_detections([default_detections_path()])
    assert detections
    for detection in detections:
        sql = detection.expanded_sql().replace("{events}", relation)
        tree = sqlglot.parse_one(sql, read="trino")
        tables = {(t.db, t.name) for t in tree.find_all(exp.Table)}
        assert {("trails", "t"), ("trails", "t__awslogs")} <= tables, detection.id


def write_log(root: Path, key: str, records: list[dict[str, Any]]) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records)))


def flagged(event_id: str, ip: str) -> dict[str, Any]:
    return {
        **record("CreateUser", "iam.amazonaws.com", ip=ip, event_id=event_id),
        "eventTime": "2026-11-29T10:00:00Z",
        "xpriority": "HIGH",
        "xrules": ["iam-user-created"],
    }


@pytest.mark.parametrize(
    "logical",
    [
        lambda ids: query.event_by_id(ids[1], RANGE),
        lambda ids: query.recent_alerts(Severity.HIGH, 20, RANGE),
        lambda ids: query.events_of_principal("arn:aws:iam::111111111111:user/alice", 20, RANGE),
        lambda ids: query.events_from_ip("203.0.113.9", 20, RANGE),
    ],
    ids=["event_by_id", "recent_alerts", "events_of_principal", "events_from_ip"],
)
def test_every_logical_query_reads_every_layouts_table(
    logical: Callable[[list[str]], query.Query], tmp_path: Path
) -> None:
    """The union relation run as SQL: two tables made by the DuckDB engine's own view over
    enriched files of two layouts, each query translated as the DuckDB engine translates it."""
    ids = [str(uuid.uuid4()) for _ in range(2)]
    write_log(tmp_path, log_key(ACCOUNT_A, REGION, DAY, "a"), [flagged(ids[0], "203.0.113.9")])
    write_log(
        tmp_path, log_key(ACCOUNT_B, REGION, DAY, "b", org=ORG), [flagged(ids[1], "203.0.113.9")]
    )
    files = [str(p) for p in sorted(tmp_path.rglob("*.json.gz"))]
    with duckdb.connect(":memory:") as connection:
        connection.execute("SET TimeZone = 'UTC'")
        raw = connection.read_json(
            files,
            format="newline_delimited",
            columns=dict(duckdb_engine._READ_COLUMNS),
            filename=True,
        )
        raw.create_view(duckdb_engine._RAW_RELATION)
        connection.execute(duckdb_engine._VIEW_SQL)
        connection.execute("CREATE SCHEMA trails")
        for table, where in (
            ("t", f"NOT LIKE '%/{ORG}/%'"),
            ("t__o_abcd123456", f"LIKE '%/{ORG}/%'"),
        ):
            connection.execute(
                f"CREATE TABLE trails.{table} AS SELECT * FROM {duckdb_engine.EVENTS_RELATION}"
                f' WHERE "$path" {where}'
            )
        one = logical(ids)
        sql = one.sql.replace("{events}", events_relation("trails", ["t", "t__o_abcd123456"]))
        text, names = duckdb_engine.translate(sql)
        params = one.all_params()
        rows = connection.execute(text, {name: params[name] for name in names}).fetchall()
    expected = 1 if one.name == "event_by_id" else 2  # one event in each layout
    assert len(rows) == expected


# The catalog: which tables exist (moto's Glue)


@pytest.fixture
def glue(aws_env: dict[str, str]) -> Any:
    return boto3.client("glue", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


@pytest.fixture
def athena(aws_env: dict[str, str]) -> Any:
    return boto3.client("athena", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


def sent_since(athena: Any, before: int) -> list[dict[str, Any]]:
    ids = athena.list_query_executions()["QueryExecutionIds"][before:]
    return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]


def a_database() -> str:
    return f"trails_{uuid.uuid4().hex[:8]}"


async def test_only_our_tables_are_read(glue: Any) -> None:
    database = a_database()
    glue.create_database(DatabaseInput={"Name": database})
    ours = {"umbrellabot.layout": "AWSLogs/"}
    for name, parameters in (
        ("cloudtrail_enriched", {}),  # made before tables carried the property: still ours
        ("cloudtrail_enriched__awslogs", ours),
        ("cloudtrail_enriched__mine", {}),  # someone's own table in our name space
        ("cloudtrail_enriched_backup", ours),
        ("billing", ours),
    ):
        glue.create_table(
            DatabaseName=database, TableInput={"Name": name, "Parameters": parameters}
        )
    now = [0.0]
    async with glue_client(region=REGION, max_attempts=2) as client:
        tables = CatalogTables(
            client, database=database, base="cloudtrail_enriched", clock=lambda: now[0]
        )
        assert await tables.names() == ("cloudtrail_enriched", "cloudtrail_enriched__awslogs")
        glue.create_table(
            DatabaseName=database,
            TableInput={"Name": "cloudtrail_enriched__o_x", "Parameters": ours},
        )
        assert len(await tables.names()) == 2  # kept for the TTL
        now[0] = 61.0
        assert len(await tables.names()) == 3  # read again after it
        tables.forget()
        glue.delete_table(DatabaseName=database, Name="cloudtrail_enriched__o_x")
        assert len(await tables.names()) == 2  # read again at once after forget()
        missing = CatalogTables(client, database=a_database(), base="cloudtrail_enriched")
        assert await missing.names() == ("cloudtrail_enriched",)  # no database yet


async def test_a_policy_without_get_tables_reads_the_plain_table_and_says_so(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await started(aws_env["AWS_ENDPOINT_URL"], seed=1, rates={"GetTables": {"denied": 1.0}})
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        async with glue_client(region=REGION, max_attempts=2) as client:
            tables = CatalogTables(client, database="default", base="cloudtrail_enriched")
            with caplog.at_level(logging.WARNING):
                assert await tables.names() == ("cloudtrail_enriched",)
                tables.forget()
                assert await tables.names() == ("cloudtrail_enriched",)
        warnings = [r.getMessage() for r in caplog.records if "glue:GetTables" in r.getMessage()]
        assert len(warnings) == 1  # once per process, not per query
        assert "reading cloudtrail_enriched only" in warnings[0]
        assert "config/iam-policy.json" in warnings[0]
    finally:
        await proxy.stop()


async def test_a_catalog_that_does_not_answer_keeps_what_was_known(
    aws_env: dict[str, str], glue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = a_database()
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "cloudtrail_enriched__awslogs",
            "Parameters": {"umbrellabot.layout": "AWSLogs/"},
        },
    )
    proxy = await started(aws_env["AWS_ENDPOINT_URL"], seed=1, rates={})
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        async with glue_client(region=REGION, max_attempts=1) as client:
            known = CatalogTables(client, database=database, base="cloudtrail_enriched")
            fresh = CatalogTables(client, database=database, base="cloudtrail_enriched")
            assert len(await known.names()) == 2
            proxy.rates = {"GetTables": {"reset": 1.0}}
            known.forget()
            assert len(await known.names()) == 2  # kept, with a warning
            with pytest.raises(QueryError, match=f"glue:GetTables on database '{database}'"):
                await fresh.names()  # nothing known: a query would silently miss tables
    finally:
        await proxy.stop()


# The commands and the engine against moto


def two_layouts(s3: Any, bucket: str) -> None:
    for key in (
        log_key(ACCOUNT_A, REGION, DAY, "a"),
        log_key(ACCOUNT_B, "eu-west-1", DAY, "b", org=ORG),
        log_key(ACCOUNT_A, REGION, DAY, "c", org=ORG),
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes([record()]))


def test_athena_ddl_prints_one_statement_per_layout(
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_layouts(s3, bucket)
    use_env(monkeypatch, tmp_path, CLOUDTRAIL_BUCKET_NAME=bucket, AWS_REGION=REGION)
    assert cli.main(["athena", "ddl"]) == cli.EXIT_OK
    statements = sqlglot.parse(capsys.readouterr().out, read="athena")
    created = [tree for tree in statements if isinstance(tree, exp.Create)]
    assert [tree.find(exp.Table).name for tree in created] == [  # type: ignore[union-attr]
        "cloudtrail_enriched",
        "cloudtrail_enriched__awslogs",
    ]
    templates = [
        next(
            p.args["value"].this
            for p in tree.find_all(exp.Property)
            if type(p) is exp.Property and p.this.this == "storage.location.template"
        )
        for tree in created
    ]
    assert templates == [
        f"s3://{bucket}/processed/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{date}}",
        f"s3://{bucket}/processed/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}",
    ]


def test_athena_setup_makes_and_names_a_table_per_layout_and_queries_read_both(
    s3: Any,
    bucket: str,
    glue: Any,
    athena: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_layouts(s3, bucket)
    database = a_database()
    use_env(
        monkeypatch,
        tmp_path,
        CLOUDTRAIL_BUCKET_NAME=bucket,
        AWS_REGION=REGION,
        ATHENA_DATABASE=database,
    )
    played = executions(athena)
    assert cli.main(["athena", "setup"]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    plain, other = f"{database}.cloudtrail_enriched", f"{database}.cloudtrail_enriched__awslogs"
    assert [line.split(":")[0] for line in out] == [
        f"database {database}",
        f"table {plain}",
        f"table {plain}",
        f"table {other}",
        f"table {other}",
        "2 layouts of CloudTrail logs in the bucket, one table each",
        "no CloudTrail-Insight folders in the bucket yet",
    ]
    assert f"created if missing, reads AWSLogs/{ORG}/ (query" in out[1]
    assert "created if missing, reads AWSLogs/ (query" in out[3]
    assert f"accounts {ACCOUNT_A}, {ACCOUNT_B}, organization {ORG}" in out[2]
    assert f"accounts {ACCOUNT_A}, {len(COMMERCIAL_REGIONS)} regions" in out[4]
    assert out[5].endswith(
        f"{plain} reads AWSLogs/{ORG}/, {other} reads AWSLogs/;"
        " lookups and detections read them all"
    )
    play_new_ddl(athena, glue, played)

    settings = Settings(
        cloudtrail_bucket_name=bucket,
        aws_region=REGION,
        athena_database=database,
        state_dir=tmp_path / "state",
    )

    async def look_up() -> None:
        async with wiring.open_athena(settings) as engine:
            await engine.run(query.event_by_id(str(uuid.uuid4()), RANGE))

    before = len(athena.list_query_executions()["QueryExecutionIds"])
    asyncio.run(look_up())
    [sent] = sent_since(athena, before)
    tree = sqlglot.parse_one(sent["Query"], read="trino")
    read = {(t.db, t.name) for t in tree.find_all(exp.Table)}
    assert read == {(database, "cloudtrail_enriched"), (database, "cloudtrail_enriched__awslogs")}
    assert tree.find(exp.Union) is not None
    assert '"date" BETWEEN ? AND ?' in sent["Query"]  # the values travel apart, as before
    assert len(sent["ExecutionParameters"]) == 5


def test_setup_again_after_an_organization_trail_started_keeps_each_table(
    s3: Any,
    bucket: str,
    glue: Any,
    athena: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_object(
        Bucket=bucket, Key=log_key(ACCOUNT_A, REGION, DAY, "a"), Body=log_bytes([record()])
    )
    database = a_database()
    use_env(
        monkeypatch,
        tmp_path,
        CLOUDTRAIL_BUCKET_NAME=bucket,
        AWS_REGION=REGION,
        ATHENA_DATABASE=database,
    )
    played = executions(athena)
    assert cli.main(["athena", "setup"]) == cli.EXIT_OK
    assert (
        "cloudtrail_enriched: created if missing, reads AWSLogs/ (query" in capsys.readouterr().out
    )
    play_new_ddl(athena, glue, played)

    s3.put_object(
        Bucket=bucket,
        Key=log_key(ACCOUNT_B, REGION, DAY, "b", org=ORG),
        Body=log_bytes([record()]),
    )
    assert cli.main(["athena", "setup"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"{database}.cloudtrail_enriched: created if missing, reads AWSLogs/ (query" in out
    assert (
        f"{database}.cloudtrail_enriched__o_abcd123456: created if missing, reads AWSLogs/{ORG}/"
        in out
    )
    play_new_ddl(athena, glue, played)
    parameters = {
        t["Name"]: t["Parameters"]["umbrellabot.layout"]
        for t in glue.get_tables(DatabaseName=database)["TableList"]
    }
    assert parameters == {
        "cloudtrail_enriched": "AWSLogs/",
        "cloudtrail_enriched__o_abcd123456": f"AWSLogs/{ORG}/",
    }


def test_setup_of_two_layouts_without_the_catalog_is_refused(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without glue:GetTables setup cannot know which table reads which layout: guessing could
    point a table at another trail's logs, so it stops (exit 3) before any DDL."""
    two_layouts(s3, bucket)

    async def run() -> int:
        proxy = await started(
            aws_env["AWS_ENDPOINT_URL"], seed=1, rates={"GetTables": {"denied": 1.0}}
        )
        try:
            use_env(
                monkeypatch,
                tmp_path,
                CLOUDTRAIL_BUCKET_NAME=bucket,
                AWS_REGION=REGION,
                AWS_ENDPOINT_URL=proxy.url,
                ATHENA_DATABASE=a_database(),
            )
            return await asyncio.to_thread(cli.main, ["athena", "setup"])
        finally:
            await proxy.stop()

    assert asyncio.run(run()) == cli.EXIT_CANNOT_RUN
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("umbrellabot: Glue refused glue:GetTables on database")
    assert "config/iam-policy.json, GlueCatalogForTheTable" in captured.err
    assert captured.err.count("\n") == 1


async def test_a_new_layout_is_set_up_or_named(caplog: pytest.LogCaptureFixture) -> None:
    watch = ProjectionWatch(None)
    await watch.after_cycle([folder(ACCOUNT_A)])
    with caplog.at_level(logging.WARNING):
        [line] = await watch.after_cycle([folder(ACCOUNT_A), folder(ACCOUNT_A, org=ORG)])
    assert line.startswith(f"CloudTrail logs now also sit under AWSLogs/{ORG}/:")
    assert "`umbrellabot athena setup` makes an Athena table for them" in line
    assert await watch.after_cycle([folder(ACCOUNT_A, org=ORG)]) == []  # said once

    updates: list[int] = []

    async def update(regions: Any) -> list[str]:
        updates.append(len(regions))
        return ["made"]

    doing = ProjectionWatch(update)
    await doing.after_cycle([folder(ACCOUNT_A)])
    assert await doing.after_cycle([folder(ACCOUNT_A), folder(ACCOUNT_A, org=ORG)]) == ["made"]
    assert updates == [2]

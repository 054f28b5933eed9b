"""Setting up the Athena table over the enriched copies: its layout from what discovery found,
and the statements that create it and bring its projection up to date.

`athena setup` and ATHENA_SETUP_ON_START run `setup` (app/wiring.py supplies the values); the
statements come from `athena_ddl.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from umbrellabot.model.layout import RegionFolder, normalize_prefix
from umbrellabot.query.athena import AthenaEngine
from umbrellabot.query.athena_ddl import (
    DEFAULT_START,
    TableLayout,
    TableLayoutError,
    create_database_ddl,
    create_table_ddl,
    layout_from_folders,
    layout_from_prefix,
    projection_update_ddl,
)


@dataclass(frozen=True)
class AthenaTable:
    """Where the table lives and what it reads."""

    database: str
    table: str
    bucket: str  # of the enriched copies
    processed_prefix: str


def layout_for(regions: Sequence[RegionFolder], initial_prefix: str, bucket: str) -> TableLayout:
    """The table's layout from the region folders discovery found; for a bucket without logs
    yet, from CLOUDTRAIL_INITIAL_PREFIX when it names an account. Raises TableLayoutError."""
    layout = layout_from_folders(regions) or layout_from_prefix(initial_prefix)
    if layout is None:
        raise TableLayoutError(
            f"no CloudTrail logs found under s3://{bucket}/{normalize_prefix(initial_prefix)} yet,"
            " and CLOUDTRAIL_INITIAL_PREFIX names no account to build the table for: set it to"
            " [prefix/]AWSLogs/[o-org/]<account>/ or run this again once logs arrived"
        )
    return layout


def table_ddl(table: AthenaTable, layout: TableLayout, start: date = DEFAULT_START) -> str:
    return create_table_ddl(
        database=table.database,
        table=table.table,
        bucket=table.bucket,
        processed_prefix=table.processed_prefix,
        layout=layout,
        start=start,
    )


def setup_statements(
    table: AthenaTable, layout: TableLayout, start: date = DEFAULT_START
) -> list[tuple[str, str]]:
    """(what it does, DDL) in order: the database unless `default`, the table if missing, then
    the projection's accounts, regions and location brought up to date."""
    name = f"{table.database}.{table.table}"
    statements = []
    if table.database != "default":
        statements.append(
            (f"database {table.database}: created if missing", create_database_ddl(table.database))
        )
    statements.append((f"table {name}: created if missing", table_ddl(table, layout, start)))
    accounts = ", ".join(layout.accounts)
    org = f", organization {layout.org}" if layout.org else ""
    statements.append(
        (
            f"table {name}: projection set to accounts {accounts}{org},"
            f" {len(layout.regions)} regions",
            projection_update_ddl(
                database=table.database,
                table=table.table,
                bucket=table.bucket,
                processed_prefix=table.processed_prefix,
                layout=layout,
            ),
        )
    )
    return statements


async def setup(
    engine: AthenaEngine, table: AthenaTable, layout: TableLayout, start: date = DEFAULT_START
) -> list[str]:
    """Run the setup statements (each waits for the previous); returns what was done."""
    done = []
    for description, sql in setup_statements(table, layout, start):
        query_id = await engine.execute_ddl(sql)
        done.append(f"{description} (query {query_id})")
    return done

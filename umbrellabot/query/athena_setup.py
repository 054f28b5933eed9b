"""Setting up the Athena tables over the enriched copies: the layouts from what discovery found
(one table each, athena_layouts.py), and the statements that create them and bring their
projections up to date.

`athena setup` and ATHENA_SETUP_ON_START run `setup` (app/wiring.py supplies the values); the
statements come from `athena_ddl.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from umbrellabot.model.layout import RegionFolder, normalize_prefix
from umbrellabot.query.athena import AthenaEngine
from umbrellabot.query.athena_catalog import CatalogTables
from umbrellabot.query.athena_ddl import (
    DEFAULT_START,
    TableLayout,
    TableLayoutError,
    create_database_ddl,
    create_table_ddl,
    location_template,
    projection_update_ddl,
)
from umbrellabot.query.athena_layouts import (
    LayoutTable,
    layout_from_prefix,
    layout_tables,
    layouts_from_folders,
)
from umbrellabot.query.queries import QueryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AthenaTable:
    """Where the tables live and what they read."""

    database: str
    table: str  # ATHENA_TABLE: the first layout's table, the others' names start with it
    bucket: str  # of the enriched copies
    processed_prefix: str


def layouts_for(
    regions: Sequence[RegionFolder], initial_prefix: str, bucket: str
) -> list[TableLayout]:
    """The layouts of the region folders discovery found (one table each); for a bucket without
    logs yet, the one CLOUDTRAIL_INITIAL_PREFIX names when it names an account. Raises
    TableLayoutError."""
    layouts = layouts_from_folders(regions)
    if not layouts:
        named = layout_from_prefix(initial_prefix)
        layouts = [named] if named is not None else []
    if not layouts:
        raise TableLayoutError(
            f"no CloudTrail logs found under s3://{bucket}/{normalize_prefix(initial_prefix)} yet,"
            " and CLOUDTRAIL_INITIAL_PREFIX names no account to build the table for: set it to"
            " [prefix/]AWSLogs/[o-org/]<account>/ or run this again once logs arrived"
        )
    return layouts


def tables_for(
    table: AthenaTable,
    layouts: Sequence[TableLayout],
    existing: Mapping[str, Mapping[str, str]] | None = None,
) -> list[LayoutTable]:
    """Each layout's table; `existing` (the catalog's tables) keeps each on the table that
    already reads it."""

    def location(layout: TableLayout) -> str:
        return location_template(table.bucket, table.processed_prefix, layout)

    return layout_tables(table.table, layouts, existing, location)


def _create(table: AthenaTable, one: LayoutTable, start: date) -> str:
    return create_table_ddl(
        database=table.database,
        table=one.name,
        bucket=table.bucket,
        processed_prefix=table.processed_prefix,
        layout=one.layout,
        start=start,
    )


def table_ddls(tables: Sequence[LayoutTable], table: AthenaTable, start: date) -> list[str]:
    """`CREATE EXTERNAL TABLE` for each layout's table (what `athena ddl` prints)."""
    return [_create(table, one, start) for one in tables]


def _update(table: AthenaTable, one: LayoutTable) -> str:
    return projection_update_ddl(
        database=table.database,
        table=one.name,
        bucket=table.bucket,
        processed_prefix=table.processed_prefix,
        layout=one.layout,
    )


def setup_statements(
    table: AthenaTable,
    tables: Sequence[LayoutTable],
    start: date = DEFAULT_START,
    database: bool = True,
) -> list[tuple[str, str]]:
    """(what it does, DDL) in order: the database unless `default` (or not `database`: another
    family's setup made it); then for each layout's table, the table if missing and its
    projection's accounts, regions and location brought up to date."""
    statements = []
    if database and table.database != "default":
        statements.append(
            (f"database {table.database}: created if missing", create_database_ddl(table.database))
        )
    for one in tables:
        name = f"{table.database}.{one.name}"
        layout = one.layout
        org = f", organization {layout.org}" if layout.org else ""
        statements += [
            (
                f"table {name}: created if missing, reads {layout.folder}",
                _create(table, one, start),
            ),
            (
                f"table {name}: projection set to accounts {', '.join(layout.accounts)}{org},"
                f" {len(layout.regions)} regions",
                _update(table, one),
            ),
        ]
    return statements


def layouts_summary(table: AthenaTable, tables: Sequence[LayoutTable]) -> str | None:
    """One line naming each layout's table when there is more than one; None otherwise."""
    if len(tables) < 2:
        return None
    each = ", ".join(f"{table.database}.{one.name} reads {one.layout.folder}" for one in tables)
    return (
        f"{len(tables)} layouts of CloudTrail logs in the bucket, one table each: {each};"
        " lookups and detections read them all"
    )


async def existing_tables(
    catalog: CatalogTables, layouts: Sequence[TableLayout]
) -> dict[str, dict[str, str]]:
    """The catalog's tables, which decide which table each layout keeps. One layout may do
    without (it is ATHENA_TABLE, as always, with a warning); more than one may not, since a
    guess could point a table at another layout's logs: the QueryError is raised."""
    try:
        return await catalog.family()
    except QueryError as err:
        if len(layouts) > 1:
            raise
        log.warning("%s: setting up %s for the one layout in the bucket", err, catalog.base)
        return {}


async def setup(
    engine: AthenaEngine,
    catalog: CatalogTables,
    table: AthenaTable,
    layouts: Sequence[TableLayout],
    start: date = DEFAULT_START,
    database: bool = True,
) -> list[str]:
    """Run the setup statements (each waits for the previous); returns what was done."""
    tables = tables_for(table, layouts, await existing_tables(catalog, layouts))
    done = []
    for description, sql in setup_statements(table, tables, start, database):
        query_id = await engine.execute_ddl(sql)
        done.append(f"{description} (query {query_id})")
    summary = layouts_summary(table, tables)
    if summary is not None:
        done.append(summary)
    catalog.forget()  # a table just made is read from the next query on
    return done

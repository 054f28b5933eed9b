"""The Athena tables from the settings: what `athena ddl`, `athena setup` and the daemon
(ATHENA_SETUP_ON_START, new accounts or layouts) run. Beside wiring.py, which opens the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from umbrellabot.app.wiring import open_athena_parts, open_store, require_bucket
from umbrellabot.config import Settings
from umbrellabot.model.layout import RegionFolder
from umbrellabot.query import athena_setup
from umbrellabot.query.athena_ddl import DEFAULT_START, TableLayout
from umbrellabot.query.athena_setup import AthenaTable


def athena_table(settings: Settings) -> AthenaTable:
    require_bucket(settings)
    return AthenaTable(
        database=settings.athena_database,
        table=settings.athena_table,
        bucket=settings.processed_bucket() or "",
        processed_prefix=settings.cloudtrail_processed_prefix,
    )


async def discover_layouts(settings: Settings) -> list[TableLayout]:
    """The layouts of the logs in the bucket, one Athena table each (athena_setup.layouts_for).
    Raises layout.LayoutError for an impossible prefix, s3.S3AccessError when S3 refuses."""
    from umbrellabot.storage.discovery import discover

    bucket = require_bucket(settings)
    async with open_store(settings) as store:
        found = await discover(
            store,
            settings.cloudtrail_initial_prefix,
            exclude=[settings.cloudtrail_processed_prefix, settings.athena_results_prefix],
        )
    return athena_setup.layouts_for(found.regions, settings.cloudtrail_initial_prefix, bucket)


async def table_ddls(
    settings: Settings, layouts: Sequence[TableLayout], start: date = DEFAULT_START
) -> list[str]:
    """The CREATE statement of each layout's table, named as setup would name them (from the
    catalog when it can be read)."""
    table = athena_table(settings)
    async with open_athena_parts(settings) as (_, catalog):
        existing = await athena_setup.existing_tables(catalog, layouts)
    return athena_setup.table_ddls(athena_setup.tables_for(table, layouts, existing), table, start)


async def setup_table(settings: Settings, start: date = DEFAULT_START) -> list[str]:
    """Discovery, then the setup statements: what `umbrellabot athena setup` and the daemon's
    ATHENA_SETUP_ON_START run."""
    layouts = await discover_layouts(settings)
    async with open_athena_parts(settings) as (engine, catalog):
        return await athena_setup.setup(engine, catalog, athena_table(settings), layouts, start)


async def update_projection(settings: Settings, regions: Sequence[RegionFolder]) -> list[str]:
    """The setup statements for the region folders a cycle found (no discovery of its own)."""
    bucket = require_bucket(settings)
    layouts = athena_setup.layouts_for(regions, settings.cloudtrail_initial_prefix, bucket)
    async with open_athena_parts(settings) as (engine, catalog):
        return await athena_setup.setup(engine, catalog, athena_table(settings), layouts)

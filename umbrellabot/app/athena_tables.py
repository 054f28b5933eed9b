"""The Athena tables from the settings: what `athena ddl`, `athena setup` and the daemon
(ATHENA_SETUP_ON_START, new accounts or layouts) run. Beside wiring.py, which opens the engine.

Two families of tables: ATHENA_TABLE's over the event logs, and ATHENA_INSIGHTS_TABLE's over the
CloudTrail Insights records (made once the bucket holds `CloudTrail-Insight/` folders)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from umbrellabot.app.wiring import open_athena_parts, open_store, require_bucket
from umbrellabot.config import Settings
from umbrellabot.model.layout import RegionFolder
from umbrellabot.query import athena_setup
from umbrellabot.query.athena_ddl import DEFAULT_START, TableLayout
from umbrellabot.query.athena_layouts import layouts_from_folders
from umbrellabot.query.athena_setup import AthenaTable

NO_INSIGHTS = (
    "no CloudTrail-Insight folders in the bucket yet: the Insights table ({table}) is made by"
    " the first setup after they appear (Insights must be enabled on the trail)"
)


def athena_table(settings: Settings, insights: bool = False) -> AthenaTable:
    """ATHENA_TABLE's family, or with `insights` ATHENA_INSIGHTS_TABLE's."""
    require_bucket(settings)
    return AthenaTable(
        database=settings.athena_database,
        table=settings.athena_insights_table if insights else settings.athena_table,
        bucket=settings.processed_bucket() or "",
        processed_prefix=settings.cloudtrail_processed_prefix,
    )


def layouts_of(settings: Settings, folders: Sequence[RegionFolder]) -> list[TableLayout]:
    """The event logs' layouts (at least one: athena_setup.layouts_for), then the Insights'."""
    bucket = require_bucket(settings)
    events = [folder for folder in folders if not folder.insights]
    layouts = athena_setup.layouts_for(events, settings.cloudtrail_initial_prefix, bucket)
    return layouts + layouts_from_folders(folder for folder in folders if folder.insights)


async def discover_layouts(settings: Settings) -> list[TableLayout]:
    """The layouts of the logs in the bucket, one Athena table each (`layouts_of`). Raises
    layout.LayoutError for an impossible prefix, s3.S3AccessError when S3 refuses."""
    from umbrellabot.storage.discovery import discover

    require_bucket(settings)
    async with open_store(settings) as store:
        found = await discover(
            store,
            settings.cloudtrail_initial_prefix,
            exclude=[settings.cloudtrail_processed_prefix, settings.athena_results_prefix],
        )
    return layouts_of(settings, found.regions + found.insight_regions)


def _families(
    settings: Settings, layouts: Sequence[TableLayout]
) -> list[tuple[AthenaTable, list[TableLayout]]]:
    events = [layout for layout in layouts if not layout.insights]
    insights = [layout for layout in layouts if layout.insights]
    families = [(athena_table(settings), events)]
    if insights:
        families.append((athena_table(settings, insights=True), insights))
    return families


async def table_ddls(
    settings: Settings, layouts: Sequence[TableLayout], start: date = DEFAULT_START
) -> list[str]:
    """The CREATE statement of each layout's table, named as setup would name them (from the
    catalog when it can be read)."""
    statements = []
    for table, family in _families(settings, layouts):
        async with open_athena_parts(settings, table.table) as (_, catalog):
            existing = await athena_setup.existing_tables(catalog, family)
        tables = athena_setup.tables_for(table, family, existing)
        statements += athena_setup.table_ddls(tables, table, start)
    return statements


async def _setup(
    settings: Settings, layouts: Sequence[TableLayout], start: date = DEFAULT_START
) -> list[str]:
    done = []
    for number, (table, family) in enumerate(_families(settings, layouts)):
        async with open_athena_parts(settings, table.table) as (engine, catalog):
            done += await athena_setup.setup(
                engine, catalog, table, family, start, database=number == 0
            )
    if not any(layout.insights for layout in layouts):
        done.append(NO_INSIGHTS.format(table=settings.athena_insights_table))
    return done


async def setup_table(settings: Settings, start: date = DEFAULT_START) -> list[str]:
    """Discovery, then the setup statements: what `umbrellabot athena setup` and the daemon's
    ATHENA_SETUP_ON_START run."""
    return await _setup(settings, await discover_layouts(settings), start)


async def update_projection(settings: Settings, regions: Sequence[RegionFolder]) -> list[str]:
    """The setup statements for the region folders a cycle found (no discovery of its own)."""
    return await _setup(settings, layouts_of(settings, regions))

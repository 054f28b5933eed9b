"""Which day folders a cycle lists: the lookback window, and after a downtime every day since a
region folder was last listed (at most MAX_CATCHUP_DAYS back), so that an outage longer than
LOOKBACK_DAYS loses nothing; and the folders of files that wait for a retry, whatever their
age. Beyond MAX_CATCHUP_DAYS, one warning names the backfill to run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

from umbrellabot.model.layout import RegionFolder, catch_up_days
from umbrellabot.storage.ports import FileLedger

log = logging.getLogger(__name__)


def catch_up_prefixes(
    files: FileLedger,
    regions: Sequence[RegionFolder],
    today: date,
    *,
    lookback: int,
    max_catch_up: int,
) -> list[str]:
    """The prefixes to list this cycle (the ledger is read here: call it off the loop)."""
    through = files.listed_through([region.prefix for region in regions])
    prefixes: dict[str, None] = {}
    behind: list[tuple[RegionFolder, date]] = []
    for region in regions:
        days, left_out = catch_up_days(today, lookback, max_catch_up, through.get(region.prefix))
        prefixes.update((region.day_prefix(day), None) for day in days)
        if left_out is not None:
            behind.append((region, left_out))
    folders = tuple(region.prefix for region in regions)
    prefixes.update(
        (folder, None) for folder in files.waiting_folders() if folder.startswith(folders)
    )
    if behind:
        _warn_behind(behind, today, max_catch_up)
    return list(prefixes)


def _warn_behind(behind: list[tuple[RegionFolder, date]], today: date, max_catch_up: int) -> None:
    since = min(day for _, day in behind)
    until = today - timedelta(days=max_catch_up)
    where = ", ".join(f"{region.account}/{region.region} since {day}" for region, day in behind[:5])
    more = f" and {len(behind) - 5} more" if len(behind) > 5 else ""
    log.warning(
        "%d region folders were last listed more than %d days ago (MAX_CATCHUP_DAYS): %s%s;"
        " run `umbrellabot backfill --since %s --until %s` for the days left out",
        len(behind),
        max_catch_up,
        where,
        more,
        since,
        until,
    )

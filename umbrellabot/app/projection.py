"""A new account (or region) of the organization reaches the Athena table's projection without
anyone running `athena setup` by hand: with ATHENA_SETUP_ON_START the daemon updates the
projection itself when a cycle finds one; without, one log line per new account names the
command. The daemon's first cycle is the baseline (setup at start covered what was there)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from umbrellabot.errors import UsageError
from umbrellabot.model.layout import RegionFolder
from umbrellabot.query.queries import QueryError
from umbrellabot.storage.ports import S3AccessError

log = logging.getLogger(__name__)
Update = Callable[[Sequence[RegionFolder]], Awaitable[list[str]]]


class ProjectionWatch:
    def __init__(self, update: Update | None) -> None:
        """`update` brings the projection up to date for these region folders (None: the
        daemon may not, so it says what to run)."""
        self._update = update
        self._accounts: set[str] | None = None
        self._regions: set[str] = set()

    async def after_cycle(self, regions: Sequence[RegionFolder]) -> list[str]:
        """What changed and what was done about it (also logged)."""
        accounts = {folder.account for folder in regions}
        names = {folder.region for folder in regions}
        if self._accounts is None:
            self._accounts, self._regions = accounts, names
            return []
        new_accounts, new_regions = accounts - self._accounts, names - self._regions
        if not new_accounts and not new_regions:
            return []
        if self._update is None:
            lines = [
                f"account {account} is new to the trail: the Athena table's projection lacks"
                " it until `umbrellabot athena setup` runs (or set ATHENA_SETUP_ON_START=true)"
                for account in sorted(new_accounts)
            ]
            if new_regions:
                lines.append(
                    f"regions {', '.join(sorted(new_regions))} are new to the trail: run"
                    " `umbrellabot athena setup` to add them to the Athena table's projection"
                )
            for line in lines:
                log.warning("%s", line)
        else:
            try:
                lines = await self._update(regions)
            except (QueryError, S3AccessError, UsageError) as err:  # tried again next cycle
                log.error(
                    "new accounts %s, regions %s: the Athena projection update failed: %s",
                    ", ".join(sorted(new_accounts)) or "none",
                    ", ".join(sorted(new_regions)) or "none",
                    err,
                )
                return []
            for line in lines:
                log.info("athena setup (new accounts or regions): %s", line)
        self._accounts |= new_accounts
        self._regions |= new_regions
        return lines

"""A new account, region or layout of the trail's bucket reaches Athena without anyone running
`athena setup` by hand: with ATHENA_SETUP_ON_START the daemon updates the projections (and makes
a new layout's table) itself when a cycle finds one; without, one log line per new account or
layout names the command. The daemon's first cycle is the baseline (setup at start covered what
was there)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from umbrellabot.errors import UsageError
from umbrellabot.model.layout import RegionFolder
from umbrellabot.query.athena_layouts import folder_layout
from umbrellabot.query.queries import QueryError
from umbrellabot.storage.ports import S3AccessError

log = logging.getLogger(__name__)
Update = Callable[[Sequence[RegionFolder]], Awaitable[list[str]]]
_SETUP = "`umbrellabot athena setup`"


@dataclass(frozen=True)
class _Seen:
    accounts: frozenset[str]
    regions: frozenset[str]
    layouts: frozenset[str]

    @classmethod
    def of(cls, regions: Sequence[RegionFolder]) -> _Seen:
        return cls(
            frozenset(folder.account for folder in regions),
            frozenset(folder.region for folder in regions),
            frozenset(_layout(folder) for folder in regions),
        )

    def __sub__(self, other: _Seen) -> _Seen:
        return _Seen(
            self.accounts - other.accounts,
            self.regions - other.regions,
            self.layouts - other.layouts,
        )

    def __or__(self, other: _Seen) -> _Seen:
        return _Seen(
            self.accounts | other.accounts,
            self.regions | other.regions,
            self.layouts | other.layouts,
        )

    def __bool__(self) -> bool:
        return bool(self.accounts or self.regions or self.layouts)


def _layout(folder: RegionFolder) -> str:
    """The layout's folder; Insights (a table family of their own) as its accounts' folder."""
    layout = folder_layout(folder)
    return f"{layout}<account>/{folder.logs}/" if folder.insights else layout


def what_to_run(new: _Seen) -> list[str]:
    """The lines that say which command brings Athena up to date."""
    lines = [
        f"CloudTrail logs now also sit under {layout}: {_SETUP} makes an Athena table for them"
        " (or set ATHENA_SETUP_ON_START=true)"
        for layout in sorted(new.layouts)
    ]
    lines += [
        f"account {account} is new to the trail: the Athena table's projection lacks"
        f" it until {_SETUP} runs (or set ATHENA_SETUP_ON_START=true)"
        for account in sorted(new.accounts)
    ]
    if new.regions:
        lines.append(
            f"regions {', '.join(sorted(new.regions))} are new to the trail: run"
            f" {_SETUP} to add them to the Athena table's projection"
        )
    return lines


class ProjectionWatch:
    def __init__(self, update: Update | None) -> None:
        """`update` brings the projections up to date for these region folders (None: the
        daemon may not, so it says what to run)."""
        self._update = update
        self._seen: _Seen | None = None

    async def after_cycle(self, regions: Sequence[RegionFolder]) -> list[str]:
        """What changed and what was done about it (also logged)."""
        seen = _Seen.of(regions)
        if self._seen is None:
            self._seen = seen
            return []
        new = seen - self._seen
        if not new:
            return []
        if self._update is None:
            lines = what_to_run(new)
            for line in lines:
                log.warning("%s", line)
        else:
            try:
                lines = await self._update(regions)
            except (QueryError, S3AccessError, UsageError) as err:  # tried again next cycle
                log.error(
                    "new accounts %s, regions %s, layouts %s: the Athena update failed: %s",
                    ", ".join(sorted(new.accounts)) or "none",
                    ", ".join(sorted(new.regions)) or "none",
                    ", ".join(sorted(new.layouts)) or "none",
                    err,
                )
                return []
            for line in lines:
                log.info("athena setup (new accounts, regions or layouts): %s", line)
        self._seen |= new
        return lines

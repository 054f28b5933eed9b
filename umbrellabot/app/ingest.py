"""One ingest cycle: find new CloudTrail files in S3, enrich each, upload the enriched copy,
and commit its outcome, events and alerts to the state store. A coroutine the scheduler calls.

Per file: download -> enrich (worker process) -> upload to the processed prefix -> one state
transaction. The state is written last, so a crash at any point means the file is simply done
again: same output key, same content, and its alerts are inserted (once) only then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from umbrellabot.app.catch_up import catch_up_prefixes
from umbrellabot.app.file_work import FileDone, FileWork
from umbrellabot.app.work_files import owner_gone, private_work_dir, process_owner
from umbrellabot.app.worker_pool import EnrichmentPool
from umbrellabot.config import Settings
from umbrellabot.enrich.geoip import CountryLookup
from umbrellabot.model.layout import RegionFolder, is_insight, output_key, region_folder_of
from umbrellabot.model.report import CycleReport
from umbrellabot.storage.discovery import discover, list_log_files
from umbrellabot.storage.ports import (
    CycleLog,
    FileLedger,
    FileState,
    ObjectInfo,
    ObjectStore,
    S3AccessError,
    S3Refused,
)

__all__ = ["FileDone", "Ingestor", "needs_work"]

log = logging.getLogger(__name__)
T = TypeVar("T")
LEASE_S = 300.0  # a file's lease; renewed every third of it while the file is worked on


def needs_work(item: ObjectInfo, known: FileState | None, now: float) -> bool:
    if known is None:
        return True
    if known.status == "done":
        return bool(item.etag and known.etag and item.etag != known.etag)  # replaced object
    if known.status == "abandoned":
        return False
    return known.next_retry_at is None or known.next_retry_at <= now


class Ingestor:
    """Runs cycles against one object store, recording them in the file ledger and the cycle
    log; owns the worker pool."""

    def __init__(
        self,
        settings: Settings,
        *,
        files: FileLedger,
        cycles: CycleLog,
        store: ObjectStore,
        sink: ObjectStore | None = None,
        rule_paths: Sequence[Path],
        geo: CountryLookup,
        output_for: Callable[[str], str] | None = None,
        all_days: bool = False,
        owner: str | None = None,
    ) -> None:
        """`output_for` maps a log key to its enriched copy's key (default: the processed
        prefix + the key); `all_days` lists whole region folders instead of the lookback
        window's day folders (local mode, where listing is free)."""
        self.settings = settings
        self.files = files
        self.cycles = cycles
        self.s3 = store
        self.sink = sink or store  # where the enriched copies go (PROCESSED_BUCKET_NAME)
        self.geo = geo
        self.output_for = output_for or partial(output_key, settings.cloudtrail_processed_prefix)
        self.all_days = all_days
        self._stopping = False
        # this cycle's listing of the lookback window, and the accounts read in full (silence)
        self.window_listing: list[ObjectInfo] = []
        self.window_accounts: set[str] = set()
        self.alerts_since: float | None = None  # backfill: older events are not alerted on
        self.regions_found: list[RegionFolder] = []  # by the last cycle's discovery
        self._on_enriched: Callable[[FileDone], None] | None = None
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="state")
        self.pool = EnrichmentPool(
            settings.enrich_workers
            if settings.enrich_workers >= 0
            else min(os.cpu_count() or 1, 4),
            list(map(str, rule_paths)),
            settings.rule_variables(),
            settings.sigma_skip_unsupported,
        )
        self.owner = owner or process_owner()
        self.work_dir = private_work_dir(settings.state_dir, self.owner)
        self.work = FileWork(
            settings,
            files=files,
            store=store,
            sink=self.sink,
            geo=geo,
            pool=self.pool,
            output_for=self.output_for,
            in_db=self.in_db,
        )

    def request_stop(self) -> None:
        """Take no new file; the ones in flight finish (their output is complete or absent)."""
        self._stopping = True

    def close(self) -> None:
        self.pool.close()
        self._db.shutdown(wait=True)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    async def in_db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, partial(function, *args, **kwargs))

    async def run_cycle(
        self,
        days: Sequence[date] | None = None,
        on_planned: Callable[[int], None] | None = None,
        on_file_done: Callable[[], None] | None = None,
        on_enriched: Callable[[FileDone], None] | None = None,
    ) -> CycleReport:
        """One pass over the day folders (default: the lookback window). Raises
        s3.S3AccessError or layout.LayoutError when the cycle cannot run at all."""
        report = CycleReport()
        before = Counter(self.s3.requests)
        faults_before = Counter(self.s3.faults)
        cycle_id = await self.in_db(self.cycles.start_cycle)
        try:
            self._on_enriched = on_enriched
            await self._cycle(report, days, on_planned, on_file_done)
        except BaseException as err:
            await self.in_db(
                self.cycles.finish_cycle, cycle_id, error=str(err) or repr(err), **_counts(report)
            )
            raise
        finally:
            report.duration_s = time.time() - report.started_at
            report.requests = Counter(self.s3.requests) - before
            report.faults = Counter(self.s3.faults) - faults_before
        await self.in_db(self.cycles.finish_cycle, cycle_id, **_counts(report))
        return report

    async def _cycle(
        self,
        report: CycleReport,
        days: Sequence[date] | None,
        on_planned: Callable[[int], None] | None,
        on_file_done: Callable[[], None] | None,
    ) -> None:
        settings = self.settings
        found = await discover(
            self.s3,
            settings.cloudtrail_initial_prefix,
            exclude=[settings.cloudtrail_processed_prefix, settings.athena_results_prefix],
        )
        report.regions = len(found.regions)
        report.insight_regions = len(found.insight_regions)
        folders = found.regions + found.insight_regions  # Insights files are read the same way
        self.regions_found = folders
        if not found.regions:
            log.warning(
                "no CloudTrail logs found under %s",
                self.s3.location(settings.cloudtrail_initial_prefix),
            )
        today = datetime.now(UTC).date()
        catching_up = days is None and not self.all_days
        if self.all_days and days is None:
            prefixes = [region.prefix for region in folders]
        elif days is not None:
            prefixes = [region.day_prefix(day) for region in folders for day in days]
        else:
            prefixes = await self.in_db(
                catch_up_prefixes,
                self.files,
                folders,
                today,
                lookback=settings.lookback_days,
                max_catch_up=settings.max_catchup_days,
            )
        listing = await list_log_files(self.s3, prefixes)
        refused = _Refused(found.refused, listing.refused)
        listed = listing.files
        report.listed = len(listed)
        known = await self.in_db(self.files.file_states, prefixes)
        now = time.time()
        todo = sorted(
            (item for item in listed if needs_work(item, known.get(item.key), now)),
            key=lambda item: item.key,
        )
        report.waiting = sum(
            1
            for item in listed
            if (state := known.get(item.key))
            and state.status == "failed"
            and not needs_work(item, state, now)
        )
        if on_planned:
            on_planned(len(todo))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        await self.in_db(self.release_the_gone)
        queue = iter(enumerate(todo))  # shared by the lanes: a backlog costs no task per file

        async def lane() -> None:
            for number, item in queue:
                if self._stopping:
                    return
                if not refused.covers(item.key):
                    await self._one_file(item, number, report, refused)
                if on_file_done:
                    on_file_done()

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(settings.s3_concurrency, len(todo))):
                    group.create_task(lane())
        except BaseExceptionGroup as group:  # S3 refused us: one clear error, not a group
            raise _first_cause(group) from None
        report.refusals = [refusal.as_refusal() for refusal in refused.all]
        if catching_up:  # the silence check reads the event logs' listing, not Insights'
            self.window_listing = [item for item in listed if not is_insight(item.key)]
            partly_refused = {r.account for r in found.regions if refused.covers(r.prefix)}
            self.window_accounts = {r.account for r in found.regions} - partly_refused
        refused.raise_if_nothing_readable(folders)
        if catching_up and not self._stopping:  # every file of those days done or waiting
            readable = [r.prefix for r in folders if not refused.covers(r.prefix)]
            await self.in_db(self.files.mark_listed, readable, today)

    async def _one_file(
        self, item: ObjectInfo, number: int, report: CycleReport, refused: _Refused
    ) -> None:
        try:
            async with self.lease(item) as mine:
                if mine:
                    await self.work.process(
                        item,
                        self.work_dir / f"{number}.in",
                        self.work_dir / f"{number}.out",
                        report,
                        self._on_enriched,
                        self.alerts_since,
                    )
        except S3Refused as refusal:  # this key's folder waits; the others go on
            refused.add(item.key, refusal)

    def release_the_gone(self) -> None:
        """The leases of processes of this host that were killed: their files at once."""
        for owner in self.files.lease_owners():
            if owner_gone(owner):
                released = self.files.release_all(owner)
                log.info("released %d file leases of %s, which is gone", released, owner)

    @asynccontextmanager
    async def lease(self, item: ObjectInfo) -> AsyncIterator[bool]:
        """Whether this process may work on `item` now: it holds the file's lease (renewed
        while the file is worked on) and the file still needs work once the lease is held."""
        if not await self.in_db(self.files.claim, item.key, self.owner, LEASE_S):
            log.info("%s is being processed by another process", self.s3.location(item.key))
            yield False
            return
        renewing = asyncio.create_task(self._renew(item.key))
        try:
            known = await self.in_db(self.files.file_states, [item.key])
            yield needs_work(item, known.get(item.key), time.time())
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self.in_db(self.files.release, item.key, self.owner)

    async def _renew(self, key: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            await self.in_db(self.files.claim, key, self.owner, LEASE_S)


class _Refused:
    """The refusals of one cycle: account folders S3 would not list, day folders, and the
    region folders of keys S3 or KMS would not read. Their files are left for later cycles,
    uncounted; a cycle with nothing readable raises."""

    def __init__(self, accounts: list[S3Refused], folders: dict[str, S3Refused]) -> None:
        self.all: list[S3Refused] = list(accounts)
        self._accounts = tuple(_folder_of(r.resource) for r in accounts)  # account folders
        self._regions: set[str] = set()  # region folders
        for prefix, refusal in folders.items():  # one per region folder, not per day folder
            self.add(prefix, refusal)

    def covers(self, key: str) -> bool:
        """Whether `key` (or a folder) lies in a refused folder; a set lookup per file."""
        return region_folder_of(key) in self._regions or key.startswith(self._accounts)

    def add(self, key: str, refusal: S3Refused) -> bool:
        """A key or prefix S3 or KMS refused; False when its folder was refused already."""
        folder = region_folder_of(key) or key
        if folder in self._regions:
            return False
        self._regions.add(folder)
        self.all.append(refusal)
        return True

    def raise_if_nothing_readable(self, regions: Sequence[RegionFolder]) -> None:
        """Nothing readable: one error (the cycle's one line). Else one line per refusal."""
        if self.all and all(self.covers(region.prefix) for region in regions):
            error = S3AccessError(str(self.all[0]))
            error.refusals = tuple(refusal.as_refusal() for refusal in self.all)
            raise error
        for refusal in self.all:
            log.error("%s; the files there wait until it is allowed, the rest is read", refusal)


def _folder_of(resource: str) -> str:
    """The key or prefix of an s3://bucket/... resource."""
    return resource.removeprefix("s3://").partition("/")[2]


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group: S3 refusing us wins over anything else."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    return next((e for e in leaves if isinstance(e, S3AccessError)), leaves[0])


def _counts(report: CycleReport) -> dict[str, Any]:
    return {
        "files": report.files,
        "records": report.records,
        "alerts": report.new_alerts,
        "failures": len(report.failed) + len(report.abandoned),
        "backlog": report.waiting,
    }

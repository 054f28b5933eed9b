"""One log file through ingest: download -> enrich (worker process) -> upload the enriched copy
-> one state transaction, and what each kind of failure means for the file.

A file is done (copy, index, alerts) or not done at all: the state is written last, and when
that write fails the copy just uploaded is withdrawn (replaced by an empty one: the policy
grants no s3:DeleteObject), so Athena never holds the events of a file the state does not.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from umbrellabot.app.worker_pool import EnrichmentPool, WorkerDied
from umbrellabot.config import Settings
from umbrellabot.enrich import workers
from umbrellabot.enrich.geoip import CountryLookup
from umbrellabot.enrich.reader import LogFormatError
from umbrellabot.model.report import CycleReport
from umbrellabot.model.severity import Severity
from umbrellabot.storage.ports import (
    FileLedger,
    ObjectInfo,
    ObjectStore,
    S3AccessError,
    S3TransientError,
)

log = logging.getLogger(__name__)
InDb = Callable[..., Awaitable[Any]]
WORKER_DEATHS_MAX = 3  # a file that killed its worker (alone) this often is left alone
DOWNLOAD_TRIES = 4
DOWNLOAD_BACKOFF_S = 0.25


@dataclass(frozen=True)
class FileDone:
    """One file committed: what the counters count as it happens."""

    records: int
    new_alerts: int
    by_severity: Counter[Severity]


class FileWork:
    """Processes single files for an Ingestor: its store, sink, pool and ledger."""

    def __init__(
        self,
        settings: Settings,
        *,
        files: FileLedger,
        store: ObjectStore,
        sink: ObjectStore,
        geo: CountryLookup,
        pool: EnrichmentPool,
        output_for: Callable[[str], str],
        in_db: InDb,
    ) -> None:
        self.settings = settings
        self.files = files
        self.s3 = store
        self.sink = sink
        self.geo = geo
        self.pool = pool
        self.output_for = output_for
        self._in_db = in_db

    async def process(
        self,
        item: ObjectInfo,
        source: Path,
        target: Path,
        report: CycleReport,
        on_enriched: Callable[[FileDone], None] | None,
        alerts_since: float | None = None,
    ) -> None:
        """Raises S3AccessError (S3Refused for this key) for the cycle to handle. Alerts of
        events before `alerts_since` (epoch s) are dropped: the file is enriched all the same."""
        settings = self.settings
        try:
            etag = await self._download(item, source)
            countries = None
            if self.geo.prefetches:
                addresses = await self.pool.run(
                    workers.source_addresses, str(source), settings.max_record_bytes
                )
                countries = await self.geo.prefetch(addresses)
            result = await self.pool.run(
                workers.enrich_file,
                str(source),
                str(target),
                item.key,
                int(settings.alert_min_severity),
                countries,
                settings.max_record_bytes,
            )
            alerts = result.alerts
            if alerts_since is not None:
                alerts = [a for a in alerts if not _older(a.event_time, alerts_since)]
            destination = self.output_for(item.key)
            await self.sink.upload(target, destination)
            try:
                added = await self._in_db(
                    self.files.record_done,
                    item.key,
                    etag,
                    destination,
                    result.records,
                    result.events,
                    alerts,
                    result.quiet,
                )
            except Exception:
                await self._withdraw(destination, target)
                raise
            report.new_alerts += added  # after the await: lanes run concurrently
        except LogFormatError as err:
            await self._fail(item, f"{err}", counts=True, report=report)
        except S3TransientError as err:
            await self._fail(item, str(err), counts=False, report=report)
        except WorkerDied as err:
            await self._fail(item, str(err), counts=False, died=True, report=report)
        except (S3AccessError, asyncio.CancelledError):
            raise
        except Exception as err:  # a bug: this file only, and counted
            log.exception("unexpected error on %s", self.s3.location(item.key))
            await self._fail(
                item, f"internal error: {type(err).__name__}: {err}", counts=True, report=report
            )
        else:
            report.files += 1
            report.records += result.records
            report.by_severity.update(result.by_severity)
            if on_enriched is not None:
                on_enriched(FileDone(result.records, added, result.by_severity))
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)

    async def _withdraw(self, destination: str, target: Path) -> None:
        """The state refused the file: its enriched copy must not stay behind alone."""
        empty = target.with_suffix(".empty")
        try:
            empty.write_bytes(gzip.compress(b""))
            await self.sink.upload(empty, destination)
        except Exception as err:  # the commit's error is the one to report
            log.warning(
                "could not withdraw %s after its state failed: %s",
                self.sink.location(destination),
                err,
            )
        finally:
            empty.unlink(missing_ok=True)

    async def _download(self, item: ObjectInfo, target: Path) -> str | None:
        """The object into `target`; a transient failure (a body cut short, a reset after
        botocore's own retries) is tried again a few times before the file waits for the next
        cycle, uncounted."""
        attempt = 1
        while True:
            try:
                return await self.s3.download(item.key, target) or item.etag
            except S3TransientError as err:
                if attempt >= DOWNLOAD_TRIES:
                    raise
                log.info("retrying %s: %s", self.s3.location(item.key), err)
                await asyncio.sleep(DOWNLOAD_BACKOFF_S * 4 ** (attempt - 1))
                attempt += 1

    async def _fail(
        self,
        item: ObjectInfo,
        reason: str,
        *,
        counts: bool,
        report: CycleReport,
        died: bool = False,
    ) -> None:
        settings = self.settings
        outcome = await self._in_db(
            self.files.record_failure,
            item.key,
            item.etag,
            reason,
            counts=counts,
            max_attempts=settings.max_file_attempts,
            retry_base_s=settings.retry_base_delay_s,
            worker_died=died,
            max_deaths=WORKER_DEATHS_MAX,
        )
        where = self.s3.location(item.key)
        if outcome.status == "abandoned":
            log.error("giving up on %s: %s", where, outcome.reason)
            report.abandoned.append((item.key, reason))
            return
        report.failed.append((item.key, reason))
        if died:
            log.warning(
                "%s: %s (%d of %d times); it is tried again",
                where,
                reason,
                outcome.deaths,
                WORKER_DEATHS_MAX,
            )
        elif counts:
            log.warning(
                "failed %s (attempt %d of %d): %s",
                where,
                outcome.attempts,
                settings.max_file_attempts,
                reason,
            )
        else:
            log.warning(
                "%s is left for the next cycle (S3 trouble, not the file's): %s", where, reason
            )


def _older(event_time: str | None, since: float) -> bool:
    """Whether a CloudTrail eventTime (2026-12-02T10:00:00Z) is before `since`."""
    if not event_time:
        return False
    try:
        moment = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() < since

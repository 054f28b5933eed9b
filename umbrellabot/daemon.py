"""The one place that wires settings, state, S3, geo-IP, the rules and the notifiers together.

`run_once` is one ingest cycle then outbox delivery; `backfill` the same over a date range.
(The long-running `run` with the scheduler and the Slack bot builds on these.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

from umbrellabot.components import build_geo, load_rule_set, rule_paths
from umbrellabot.config import Settings
from umbrellabot.delivery import Notifier, flush_outbox
from umbrellabot.errors import UsageError
from umbrellabot.ingest import CycleReport, Ingestor
from umbrellabot.s3 import open_bucket
from umbrellabot.state import StateStore


class NoBucketError(UsageError):
    """Ingestion needs CLOUDTRAIL_BUCKET_NAME."""


@asynccontextmanager
async def ingestor(settings: Settings) -> AsyncIterator[Ingestor]:
    """An Ingestor with its state store, bucket client and worker pool, closed afterwards."""
    bucket = settings.cloudtrail_bucket_name
    if not bucket:
        raise NoBucketError(
            "CLOUDTRAIL_BUCKET_NAME is not set (for local files use `umbrellabot scan`)"
        )
    load_rule_set(settings)  # invalid rules stop here, before any AWS call
    state = StateStore(settings.state_dir)
    try:
        async with open_bucket(
            bucket,
            region=settings.aws_region,
            concurrency=settings.s3_concurrency,
            max_attempts=settings.s3_max_attempts,
        ) as s3:
            runner = Ingestor(settings, state, s3, rule_paths(settings), build_geo(settings))
            try:
                yield runner
            finally:
                runner.close()
    finally:
        state.close()


def _prune_index(settings: Settings, state: StateStore) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=settings.index_retention_days)
    state.prune_events(cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"))


async def run_once(settings: Settings, notifier: Notifier) -> tuple[CycleReport, int]:
    """One ingest cycle over the lookback window, then deliver the outbox."""
    async with ingestor(settings) as runner:
        report = await runner.run_cycle()
        _prune_index(settings, runner.state)
        delivered = await flush_outbox(runner.state, notifier)
    return report, delivered


async def backfill(
    settings: Settings,
    days: Sequence[date],
    notifier: Notifier,
    on_planned: Callable[[int], None] | None = None,
    on_file_done: Callable[[], None] | None = None,
) -> tuple[CycleReport, int]:
    """Process a historical range through the same path; files done before are skipped, so an
    interrupted backfill is simply run again."""
    async with ingestor(settings) as runner:
        report = await runner.run_cycle(days, on_planned, on_file_done)
        delivered = await flush_outbox(runner.state, notifier)
    return report, delivered

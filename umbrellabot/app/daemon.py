"""The one place that wires settings, state, the object store (S3 or a local folder), geo-IP,
the rules, the query engine (Athena or DuckDB), the notifier (Slack or console), the Slack bot,
the scheduler and the health server — and runs them in one asyncio event loop.

- `run_once`: one ingest cycle, the SQL detections, then outbox delivery.
- `backfill`: the same path over a date range.
- `run`: the daemon: an APScheduler job (cycle, detections, delivery) beside the Bolt Socket
  Mode handler and the health server; SIGTERM/SIGINT stop it cleanly, a second signal at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from rich.console import Console

from umbrellabot.app.delivery import Notifier, flush_outbox
from umbrellabot.app.health import Metrics, Readiness, health_app, start_health_server
from umbrellabot.app.ingest import Ingestor
from umbrellabot.app.wiring import build_geo, load_rule_list, rule_paths
from umbrellabot.config import Settings
from umbrellabot.errors import UsageError
from umbrellabot.model.layout import output_key
from umbrellabot.model.report import CycleReport
from umbrellabot.query.detections import (
    Detection,
    DetectionResult,
    DetectionRunError,
    alerts_for,
    configured_paths,
    load_detections,
    run_detections,
)
from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import Engine, QueryError
from umbrellabot.rules.rule import Rule
from umbrellabot.storage.local import LocalStore
from umbrellabot.storage.s3 import ObjectStore, S3AccessError, open_bucket
from umbrellabot.storage.sqlite_state import DATABASE_NAME, StateStore

log = logging.getLogger(__name__)


class NoBucketError(UsageError):
    """Ingestion from S3 needs CLOUDTRAIL_BUCKET_NAME."""


@dataclass
class CycleOutcome:
    report: CycleReport
    detections: list[DetectionResult] = field(default_factory=list)
    detection_failures: dict[str, str] = field(default_factory=dict)
    detection_alerts: int = 0
    delivered: int = 0


@dataclass
class Services:
    settings: Settings
    state: StateStore
    store: ObjectStore
    engine: Engine | None
    rules: list[Rule]
    detections: list[Detection]
    notifier: Notifier
    ingestor: Ingestor
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def where(self) -> str:
        bucket = self.settings.cloudtrail_bucket_name
        return f"s3://{bucket}" if bucket else f"folder {self.settings.cloudtrail_local_path}"

    def locator(self) -> EventLocator:
        return EventLocator(
            self.store.read,
            state=self.state,
            engine=self.engine,
            window_days=self.settings.event_lookup_days,
        )


def _local_store(settings: Settings) -> LocalStore:
    folder = settings.cloudtrail_local_path
    if not folder.is_dir():
        raise UsageError(
            f"CLOUDTRAIL_LOCAL_PATH: no such folder: {folder} (set CLOUDTRAIL_BUCKET_NAME for S3,"
            " or point CLOUDTRAIL_LOCAL_PATH at a folder of CloudTrail logs, e.g. examples/)"
        )
    return LocalStore(folder, settings.enriched_local_path)


@asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Engine]:
    """Athena when configured (a bucket, or QUERY_ENGINE=athena), else DuckDB."""
    if settings.uses_athena():
        from umbrellabot.query.athena import open_athena

        async with open_athena(settings) as athena:
            yield athena
    else:
        from umbrellabot.query.duckdb_engine import DuckDBEngine

        yield DuckDBEngine.from_settings(settings)


@asynccontextmanager
async def services(settings: Settings, console: Console) -> AsyncIterator[Services]:
    """Everything one process needs, closed in reverse order afterwards."""
    rules = load_rule_list(settings)  # invalid rules stop here, before any I/O
    detections = load_detections(configured_paths(settings)) if settings.detections_enabled else []
    async with AsyncExitStack() as stack:
        state = StateStore(settings.state_dir)
        stack.callback(state.close)
        store: ObjectStore
        output_for: Callable[[str], str]
        if settings.cloudtrail_bucket_name:
            store = await stack.enter_async_context(
                open_bucket(
                    settings.cloudtrail_bucket_name,
                    region=settings.aws_region,
                    concurrency=settings.s3_concurrency,
                    max_attempts=settings.s3_max_attempts,
                )
            )
            output_for = partial(output_key, settings.cloudtrail_processed_prefix)
        else:
            store = _local_store(settings)
            output_for = partial(output_key, "")  # the same key under ENRICHED_LOCAL_PATH
        engine = await stack.enter_async_context(open_engine(settings))
        runner = Ingestor(
            settings,
            state,
            store,
            rule_paths(settings),
            build_geo(settings),
            output_for=output_for,
            all_days=not settings.cloudtrail_bucket_name,
        )
        stack.callback(runner.close)
        from umbrellabot.slack.notifier import notifier_for, rule_channels

        notifier = notifier_for(settings, state, console, rule_channels(rules))
        yield Services(settings, state, store, engine, rules, detections, notifier, runner)


@asynccontextmanager
async def lookup(settings: Settings) -> AsyncIterator[tuple[EventLocator, list[Rule]]]:
    """What `show` needs: the index (when there is state), the engine and the store to read the
    enriched copies from; no worker pool, no notifier."""
    rules = load_rule_list(settings)
    async with AsyncExitStack() as stack:
        state: StateStore | None = None
        if (settings.state_dir / DATABASE_NAME).exists():
            state = StateStore(settings.state_dir)
            stack.callback(state.close)
        store: ObjectStore
        if settings.cloudtrail_bucket_name:
            store = await stack.enter_async_context(
                open_bucket(
                    settings.cloudtrail_bucket_name,
                    region=settings.aws_region,
                    concurrency=1,
                    max_attempts=settings.s3_max_attempts,
                )
            )
        else:
            store = LocalStore(settings.cloudtrail_local_path, settings.enriched_local_path)
        engine = await stack.enter_async_context(open_engine(settings))
        yield (
            EventLocator(
                store.read, state=state, engine=engine, window_days=settings.event_lookup_days
            ),
            rules,
        )


@asynccontextmanager
async def ingestor(settings: Settings) -> AsyncIterator[Ingestor]:
    """Just the Ingestor over S3 (tests and benchmarks drive cycles with it)."""
    if not settings.cloudtrail_bucket_name:
        raise NoBucketError("CLOUDTRAIL_BUCKET_NAME is not set")
    async with services(settings, Console(quiet=True)) as svc:
        yield svc.ingestor


async def _detect(svc: Services, outcome: CycleOutcome) -> None:
    if not svc.detections or svc.engine is None:
        return
    try:
        results = await run_detections(svc.engine, svc.detections)
    except DetectionRunError as err:
        results, outcome.detection_failures = err.results, err.failures
        for detection_id, reason in err.failures.items():
            log.error("detection %s failed: %s", detection_id, reason)
            svc.metrics.errors.labels(component="detections").inc()
    except Exception as err:  # a bug there must not hold back the delivery of the outbox
        log.exception("the detections failed")
        outcome.detection_failures = {"*": f"{type(err).__name__}: {err}"}
        svc.metrics.errors.labels(component="detections").inc()
        return
    outcome.detections = results
    alerts = alerts_for(results, svc.settings.alert_min_severity)
    outcome.detection_alerts = await asyncio.to_thread(svc.state.add_alerts, alerts)


async def cycle(
    svc: Services,
    days: Sequence[date] | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_file_done: Callable[[], None] | None = None,
) -> CycleOutcome:
    """One ingest cycle, then the detections, then delivery of the outbox."""
    started = time.monotonic()
    metrics = svc.metrics
    try:
        report = await svc.ingestor.run_cycle(days, on_planned, on_file_done)
    except BaseException:
        metrics.cycles.labels(outcome="failed").inc()
        raise
    outcome = CycleOutcome(report)
    cutoff = time.time() - svc.settings.index_retention_days * 86400
    await asyncio.to_thread(svc.state.prune_events, cutoff)
    await _detect(svc, outcome)
    failures_before = getattr(svc.notifier, "failures", 0)
    outcome.delivered = await flush_outbox(svc.state, svc.notifier)
    slack_failures = getattr(svc.notifier, "failures", 0) - failures_before
    if slack_failures:
        metrics.errors.labels(component="slack").inc(slack_failures)
    summary = getattr(svc.notifier, "post_cycle_summary", None)
    if svc.settings.slack_cycle_summary and report.files and summary is not None:
        await summary(report)
    metrics.cycles.labels(outcome="succeeded").inc()
    metrics.files.inc(report.files)
    metrics.records.inc(report.records)
    metrics.file_failures.inc(len(report.failed) + len(report.abandoned))
    for severity, count in report.by_severity.items():
        metrics.alerts.labels(severity=severity.label).inc(count)
    metrics.new_alerts.inc(report.new_alerts + outcome.detection_alerts)
    metrics.delivered.inc(outcome.delivered)
    metrics.cycle_seconds.observe(time.monotonic() - started)
    metrics.outbox_depth.set(await asyncio.to_thread(svc.state.outbox_depth))
    metrics.last_success.set(time.time())
    return outcome


async def run_once(settings: Settings, console: Console) -> tuple[Services, CycleOutcome]:
    async with services(settings, console) as svc:
        return svc, await cycle(svc)


async def backfill(
    settings: Settings,
    days: Sequence[date],
    console: Console,
    on_planned: Callable[[int], None] | None = None,
    on_file_done: Callable[[], None] | None = None,
) -> tuple[Services, CycleOutcome]:
    """A historical range through the same path; files done before are skipped, so an
    interrupted backfill is simply run again."""
    async with services(settings, console) as svc:
        return svc, await cycle(svc, days, on_planned, on_file_done)


def _kill_workers() -> None:
    """Stop the enrichment worker processes now (their work is done again next time)."""
    for child in multiprocessing.active_children():
        child.kill()


class Daemon:
    """`umbrellabot run`: the scheduler, the bot and the health server in one loop."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.stopping = asyncio.Event()
        self._signals = 0
        self._cycle: asyncio.Task[Any] | None = None

    def _on_signal(self, number: int) -> None:
        self._signals += 1
        if self._signals > 1:  # a second signal: leave at once
            log.warning("second %s: exiting now", signal.Signals(number).name)
            _kill_workers()  # else they are left behind, orphans
            os._exit(128 + number)
        log.info("%s: finishing the files in flight, then exiting", signal.Signals(number).name)
        self.stopping.set()

    async def _job(self, svc: Services, readiness: Readiness) -> None:
        self._cycle = asyncio.current_task()
        try:
            outcome = await cycle(svc)
        except (S3AccessError, QueryError, UsageError) as err:
            readiness.last_error = str(err)
            component = "s3" if isinstance(err, S3AccessError) else "athena"
            svc.metrics.errors.labels(component=component).inc()
            log.error("cycle failed: %s", err)
        except asyncio.CancelledError:  # by _finish, past the budget: not an error of the job
            log.warning("cycle abandoned at shutdown; unfinished files are done next time")
        except Exception as err:
            readiness.last_error = f"{type(err).__name__}: {err}"
            log.exception("cycle failed")
        else:
            readiness.last_success_at, readiness.last_error = time.time(), None
            report = outcome.report
            log.info(
                "cycle done: %d files, %d records, %d new alerts, %d delivered, %d failed",
                report.files,
                report.records,
                report.new_alerts + outcome.detection_alerts,
                outcome.delivered,
                len(report.failed) + len(report.abandoned),
            )
        finally:
            self._cycle = None

    def _trigger(self) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.settings.schedule:
            return CronTrigger.from_crontab(self.settings.schedule, timezone=UTC)
        return IntervalTrigger(seconds=self.settings.poll_interval, timezone=UTC)

    async def run(self) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        settings = self.settings
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self._on_signal, number)
        async with services(settings, self.console) as svc, AsyncExitStack() as stack:
            readiness = Readiness(
                max_cycle_age_s=max(3 * settings.poll_interval, 900),
                slack_enabled=settings.slack_app_token is not None,
            )
            await self._setup_athena(svc)
            if settings.health_port:
                server = await start_health_server(
                    health_app(svc.metrics, readiness), settings.health_host, settings.health_port
                )
                stack.push_async_callback(server.cleanup)
            if settings.slack_bot_token and settings.slack_app_token:
                await self._start_bot(svc, readiness, stack)
            # Everything wired so far lives as long as the process: out of the collector's
            # sight, full collections no longer pause the loop for tens of milliseconds.
            gc.freeze()
            scheduler = AsyncIOScheduler(timezone=UTC)
            scheduler.add_job(
                self._job,
                self._trigger(),
                args=(svc, readiness),
                id="cycle",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )  # and one cycle at start
            scheduler.start()
            log.info(
                "umbrellabot running: %s, every %s",
                svc.where,
                settings.schedule or f"{settings.poll_interval}s",
            )
            await self.stopping.wait()
            # pause, not shutdown: APScheduler's shutdown cancels the running cycle at once
            scheduler.pause()
            await self._finish(svc)
            scheduler.shutdown(wait=False)
        log.info("umbrellabot stopped")
        return 0

    async def _setup_athena(self, svc: Services) -> None:
        if not (self.settings.athena_setup_on_start and self.settings.uses_athena()):
            return
        from umbrellabot.query.athena import setup_table

        try:
            for line in await setup_table(self.settings):
                log.info("athena setup: %s", line)
        except (QueryError, S3AccessError, UsageError) as err:
            svc.metrics.errors.labels(component="athena").inc()
            log.error("athena setup failed: %s", err)

    async def _start_bot(self, svc: Services, readiness: Readiness, stack: AsyncExitStack) -> None:
        from umbrellabot.slack.bot import SlackBot, SlackBotError, recent_from_outbox

        bot = SlackBot(
            self.settings,
            locator=svc.locator(),
            rules=svc.rules,
            state=svc.state,
            recent=recent_from_outbox(svc.state),
        )

        async def connected() -> bool:
            client = bot.socket_client
            up = bool(client is not None and await client.is_connected())
            svc.metrics.slack_connected.set(1 if up else 0)
            return up

        readiness.slack_connected = connected

        async def start() -> None:
            try:
                await bot.start()
            except SlackBotError as err:  # the ingest goes on; /readyz says what is wrong
                svc.metrics.errors.labels(component="slack").inc()
                log.error("Slack bot not started: %s", err)

        starting = asyncio.create_task(start())  # the scheduler does not wait for Slack

        async def stop() -> None:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await bot.stop()

        stack.push_async_callback(stop)

    async def _finish(self, svc: Services) -> None:
        """Stop taking files, let the ones in flight end within the budget, deliver what can
        be delivered; whatever is cut short is complete or absent and is done next time."""
        budget = self.settings.shutdown_timeout_s
        deadline = time.monotonic() + budget * 0.6
        svc.ingestor.request_stop()
        running = self._cycle
        if running is not None and not running.done():
            try:
                await asyncio.wait_for(
                    asyncio.shield(running), max(0.0, deadline - time.monotonic())
                )
            except (TimeoutError, asyncio.CancelledError):
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                _kill_workers()  # the file they enrich is abandoned; closing would wait for it
            except Exception:
                log.debug("the last cycle ended with an error", exc_info=True)
        try:
            await asyncio.wait_for(flush_outbox(svc.state, svc.notifier), budget * 0.2)
        except (TimeoutError, Exception) as err:
            log.warning(
                "outbox not flushed at shutdown (%s); it is delivered next time", type(err).__name__
            )

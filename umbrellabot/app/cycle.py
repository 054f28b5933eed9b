"""One cycle — ingest, then the SQL detections, then delivery of the outbox — and the two
commands that run one: `run --once` and `backfill`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

from rich.console import Console

from umbrellabot.app.delivery import flush_outbox
from umbrellabot.app.health import Metrics
from umbrellabot.app.ingest import FileDone
from umbrellabot.app.services import Services, services
from umbrellabot.app.silence import check_silence, newest_by_account
from umbrellabot.config import Settings
from umbrellabot.model.own_alerts import access_denied
from umbrellabot.model.report import AccessRefusal, CycleReport
from umbrellabot.query.detection_runs import DetectionRunError, alerts_for, run_detections
from umbrellabot.query.detections import LATE_EVENTS, DetectionResult
from umbrellabot.storage.ports import ObjectInfo, S3AccessError, S3Refused, StateBackend

log = logging.getLogger(__name__)


@dataclass
class CycleOutcome:
    report: CycleReport
    detections: list[DetectionResult] = field(default_factory=list)
    detection_failures: dict[str, str] = field(default_factory=dict)
    detection_alerts: int = 0
    delivered: int = 0


def missed_windows(previous_success: float | None, now: float, max_days: int) -> timedelta:
    """How far back the detections evaluate their windows: events arrive up to an hour late,
    and after a downtime every window since the last cycle that went through (at most
    MAX_CATCHUP_DAYS)."""
    if previous_success is None:
        return LATE_EVENTS
    missed = timedelta(seconds=max(now - previous_success, 0)) + LATE_EVENTS
    return min(max(missed, LATE_EVENTS), timedelta(days=max_days))


async def _detect(svc: Services, outcome: CycleOutcome, previous_success: float | None) -> None:
    if not svc.detections or svc.engine is None:
        return
    late = missed_windows(previous_success, time.time(), svc.settings.max_catchup_days)
    try:
        results = await run_detections(svc.engine, svc.detections, late_events=late)
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
    outcome.detection_alerts = await asyncio.to_thread(svc.state.outbox.add_alerts, alerts)


async def cycle(
    svc: Services,
    days: Sequence[date] | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_file_done: Callable[[], None] | None = None,
    *,
    deliver: bool = True,
    ingest: bool = True,
    announced: Sequence[ObjectInfo] | None = None,
    once: bool = True,
) -> CycleOutcome:
    """One ingest cycle, then the detections, then (`deliver`) delivery of the outbox; the
    daemon delivers from its own task instead. Counters move as each file is committed.
    Without `ingest` (INGEST_MODE=sqs between sweeps: the queue brings the files) nothing is
    listed: the detections, pruning and delivery run alone, and the silence check reads the
    files the queue brought (`announced`). Without `once` (another process holds the
    scheduled work: duties.py) the detections, pruning and the silence check are left out."""
    started = time.monotonic()
    metrics = svc.metrics
    faults_before = Counter(svc.store.faults)
    breaks_before = svc.ingestor.pool.breaks
    previous_success = await asyncio.to_thread(svc.state.cycles.last_success_at)
    await svc.names.refresh()  # ACCOUNT_NAMES_FROM_ORGANIZATIONS: at start, then daily
    report = await _ingest(svc, days, on_planned, on_file_done, deliver, once) if ingest else None
    if announced is not None and once:  # the accounts heard from, and those the state knows
        await _check_silence(svc, announced, newest_by_account(announced))
    outcome = CycleOutcome(report if report is not None else CycleReport())
    _report_faults(svc, Counter(svc.store.faults) - faults_before, warn=True)
    metrics.worker_restarts.inc(svc.ingestor.pool.breaks - breaks_before)
    if once:
        await asyncio.to_thread(_prune, svc.state, svc.settings.state_retention_days)
        await _detect(svc, outcome, previous_success)
    if deliver:
        failures_before = svc.notifier.failures
        outcome.delivered = await flush_outbox(
            svc.state.outbox, svc.notifier, owner=svc.owner, triage=svc.state.triage
        )
        slack_failures = svc.notifier.failures - failures_before
        if slack_failures:
            metrics.errors.labels(component="slack").inc(slack_failures)
        metrics.delivered.inc(outcome.delivered)
    if svc.settings.slack_cycle_summary and outcome.report.files:
        await svc.notifier.post_cycle_summary(outcome.report)
    metrics.cycles.labels(outcome="succeeded").inc()
    metrics.file_failures.inc(len(outcome.report.failed) + len(outcome.report.abandoned))
    metrics.files_abandoned.inc(len(outcome.report.abandoned))
    metrics.new_alerts.inc(outcome.detection_alerts)
    metrics.cycle_seconds.observe(time.monotonic() - started)
    metrics.outbox_depth.set(await asyncio.to_thread(svc.state.outbox.outbox_depth))
    metrics.last_success.set(time.time())
    return outcome


async def _ingest(
    svc: Services,
    days: Sequence[date] | None,
    on_planned: Callable[[int], None] | None,
    on_file_done: Callable[[], None] | None,
    deliver: bool,
    once: bool = True,
) -> CycleReport:
    """The listing and the files it finds; refusals and the silence check are alerted."""
    faults_before = Counter(svc.store.faults)
    try:
        report = await svc.ingestor.run_cycle(
            days, on_planned, on_file_done, on_enriched=partial(count_file, svc.metrics)
        )
    except BaseException as err:
        svc.metrics.cycles.labels(outcome="failed").inc()
        _report_faults(svc, Counter(svc.store.faults) - faults_before, warn=False)
        refusals = _refusals_of(err)
        if refusals:  # nothing readable: told in Slack too, not only in the log
            await _alert_refusals(svc, refusals)
            if deliver:
                await flush_outbox(
                    svc.state.outbox, svc.notifier, owner=svc.owner, triage=svc.state.triage
                )
        raise
    await _alert_refusals(svc, report.refusals)
    if days is None and once:
        await _check_silence(svc)
    return report


async def _check_silence(
    svc: Services,
    listed: Sequence[ObjectInfo] | None = None,
    accounts: Iterable[str] | None = None,
) -> None:
    """LOG_SILENCE_HOURS, over the lookback listing or the files the queue brought (S3 only:
    off in local mode)."""
    hours = svc.settings.log_silence_hours
    if not hours or not svc.settings.cloudtrail_bucket_name:
        return
    runner = svc.ingestor
    alerts = await asyncio.to_thread(
        check_silence,
        svc.state.deliveries,
        runner.window_listing if listed is None else listed,
        runner.window_accounts if accounts is None else accounts,
        time.time(),
        hours,
    )
    if alerts:
        for alert in alerts:
            log.warning("%s", alert.rule_title)
        await asyncio.to_thread(svc.state.outbox.add_alerts, alerts)


def _refusals_of(err: BaseException) -> tuple[AccessRefusal, ...]:
    if isinstance(err, S3Refused):  # the trail's root itself refused
        return (err.as_refusal(),)
    return err.refusals if isinstance(err, S3AccessError) else ()


async def _alert_refusals(svc: Services, refusals: Sequence[AccessRefusal]) -> None:
    if refusals:
        now = time.time()
        alerts = [access_denied(refusal, now) for refusal in refusals]
        await asyncio.to_thread(svc.state.outbox.add_alerts, alerts)


def _prune(state: StateBackend, retention_days: int) -> None:
    """STATE_RETENTION_DAYS: everything in the state older than that goes, however old."""
    cutoff = time.time() - retention_days * 86400
    state.events.prune_events(cutoff)
    state.files.prune_files(cutoff)
    state.outbox.prune_outbox(cutoff)
    state.cycles.prune_cycles(cutoff)
    state.digests.prune_quiet(datetime.fromtimestamp(cutoff, UTC).date().isoformat())


def count_file(metrics: Metrics, done: FileDone) -> None:
    metrics.files.inc()
    metrics.records.inc(done.records)
    metrics.new_alerts.inc(done.new_alerts)
    for severity, count in done.by_severity.items():
        metrics.alerts.labels(severity=severity.label).inc(count)


def _report_faults(svc: Services, faults: Counter[str], *, warn: bool) -> None:
    """S3 trouble that botocore's retries absorbed: counted, and one warning line a cycle (a
    cycle that failed says so in its own line)."""
    if not faults:
        return
    throttled = faults["throttle"]
    svc.metrics.s3_throttles.inc(throttled)
    svc.metrics.s3_retries.inc(faults.total())
    if not warn:
        return
    others = ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items()) if kind != "throttle")
    log.warning(
        "S3 throttled %d requests and %d more failed transiently%s this cycle; they were retried"
        " (up to S3_MAX_ATTEMPTS=%d attempts each)",
        throttled,
        faults.total() - throttled,
        f" ({others})" if others else "",
        svc.settings.s3_max_attempts,
    )


async def run_once(
    settings: Settings, console: Console, *, wide: bool = False
) -> tuple[Services, CycleOutcome]:
    async with services(settings, console, wide=wide) as svc:
        return svc, await cycle(svc)


async def backfill(
    settings: Settings,
    days: Sequence[date],
    console: Console,
    on_planned: Callable[[int], None] | None = None,
    on_file_done: Callable[[], None] | None = None,
    *,
    old_alerts: bool = False,
    wide: bool = False,
) -> tuple[Services, CycleOutcome]:
    """A historical range through the same path; files done before are skipped, so an
    interrupted backfill is simply run again. Events older than STATE_RETENTION_DAYS are not
    alerted on (`old_alerts`: they are): the outbox that told them once is pruned by then."""
    async with services(settings, console, wide=wide) as svc:
        if not old_alerts:
            svc.ingestor.alerts_since = time.time() - settings.state_retention_days * 86400
        return svc, await cycle(svc, days, on_planned, on_file_done)

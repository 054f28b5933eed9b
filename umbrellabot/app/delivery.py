"""Delivering alerts from the durable outbox. Only what was delivered is marked delivered, so a
crash or an outage leaves the rest in the outbox for the next attempt.

The console is the embedded default (and what `run --once` uses); Slack plugs in beside it,
behind the same `storage.ports.Notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from rich.console import Console

from umbrellabot.app.alert_table import print_alerts
from umbrellabot.app.work_files import owner_gone, process_owner
from umbrellabot.model.report import CycleReport
from umbrellabot.model.triage import MuteKey
from umbrellabot.storage.ports import AlertOutbox, Notifier, PendingAlert, Triage

if TYPE_CHECKING:  # the health server (aiohttp, prometheus) loads only with the daemon
    from umbrellabot.app.health import Metrics

log = logging.getLogger(__name__)


class ConsoleNotifier:
    """Alerts as a table on the console: a delivery target like Slack."""

    failures = 0  # printing does not fail the way a remote service does

    def __init__(self, console: Console, limit: int = 0, *, wide: bool = False) -> None:
        self._console = console
        self._limit = limit
        self._wide = wide

    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        if alerts:
            print_alerts(self._console, [p.alert for p in alerts], self._limit, wide=self._wide)
        return [p.id for p in alerts]

    async def post_cycle_summary(self, report: CycleReport) -> bool:
        return False  # the commands print their own summary


async def set_aside_muted(triage: Triage, pending: list[PendingAlert]) -> list[PendingAlert]:
    """The alerts no mute silences; the others are marked muted in the outbox (kept, counted,
    never posted)."""
    mutes = {mute.key: mute for mute in await asyncio.to_thread(triage.active_mutes, time.time())}
    if not mutes:
        return pending
    muted: dict[int, list[int]] = {}
    told = []
    for item in pending:
        mute = mutes.get(MuteKey.of(item.alert))
        if mute is None:
            told.append(item)
        else:
            muted.setdefault(mute.id, []).append(item.id)
    for mute_id, ids in muted.items():
        await asyncio.to_thread(triage.mark_muted, ids, mute_id)
        log.info("%d alerts muted by mute %d, kept in the outbox", len(ids), mute_id)
    return told


async def flush_outbox(
    outbox: AlertOutbox,
    notifier: Notifier,
    batch: int = 500,
    now: float | None = None,
    owner: str | None = None,
    triage: Triage | None = None,
) -> int:
    """Deliver every pending alert (due at `now`, default the current time); returns how many
    were delivered. Each batch is claimed by `owner` first, so that two processes on one state
    never deliver the same alert; what was not delivered is given back at the end. With
    `triage`, what a mute silences is set aside as muted first."""
    claimant = owner or process_owner()
    for gone in await asyncio.to_thread(outbox.claim_owners):
        if owner_gone(gone):  # killed while delivering: its alerts are ours, maybe told
            await asyncio.to_thread(partial(outbox.release_claims, gone, maybe_told=True))
    delivered = 0
    try:
        while claimed := await asyncio.to_thread(outbox.claim_pending, claimant, batch, now):
            pending = claimed if triage is None else await set_aside_muted(triage, claimed)
            if not pending:
                continue
            done = await notifier.deliver(pending)
            await asyncio.to_thread(outbox.mark_delivered, done)
            delivered += len(done)
            if len(done) < len(pending):  # the notifier could not take more now
                break
    finally:
        await asyncio.to_thread(outbox.release_claims, claimant)
    return delivered


class DeliveryLoop:
    """Delivery as its own task beside ingest, fed by the outbox: alerts go out as their files
    commit, however slowly Slack takes them (about one post a second a channel), and a cycle
    never waits for Slack. One round at a time in this process."""

    def __init__(
        self,
        outbox: AlertOutbox,
        notifier: Notifier,
        metrics: Metrics,
        *,
        owner: str,
        interval_s: float = 1.0,
        idle_interval_s: float = 1.0,
        triage: Triage | None = None,
    ) -> None:
        self._triage = triage
        self._outbox = outbox
        self._notifier = notifier
        self._metrics = metrics
        self._owner = owner
        self._interval_s = interval_s
        self._idle_interval_s = max(idle_interval_s, interval_s)
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._stopping = False

    def wake(self) -> None:
        """Deliver now rather than at the next tick (a cycle ended, detections fired)."""
        self._wake.set()

    async def run(self) -> None:
        """A round when woken, else on a tick that slows down (to `idle_interval_s`) while
        rounds find nothing: what other processes add, and retries that come due, wait at most
        that long; a shared state is not asked twice a second for nothing."""
        tick = self._interval_s
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)
            woken = self._wake.is_set()
            self._wake.clear()
            if not self._stopping:
                busy = await self.round() > 0 or woken
                tick = self._interval_s if busy else min(tick * 2, self._idle_interval_s)

    async def stop(self) -> None:
        """No new round; the one under way finishes (see `round` for the last one)."""
        self._stopping = True
        self._wake.set()

    async def round(self) -> int:
        """One delivery of what is pending; returns how many were delivered."""
        async with self._round:
            failures_before = self._notifier.failures
            try:
                delivered = await flush_outbox(
                    self._outbox, self._notifier, owner=self._owner, triage=self._triage
                )
            except Exception:  # a bug there must not end delivery for good
                log.exception("delivering the outbox failed")
                self._metrics.errors.labels(component="delivery").inc()
                return 0
            failures = self._notifier.failures - failures_before
            if failures:
                self._metrics.errors.labels(component="slack").inc(failures)
            self._metrics.delivered.inc(delivered)
            depth = await asyncio.to_thread(self._outbox.outbox_depth)
            self._metrics.outbox_depth.set(depth)
            if delivered:
                log.info("delivered %d alerts (%d waiting)", delivered, depth)
            return delivered

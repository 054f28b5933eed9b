"""Delivering alerts from the durable outbox. Only what was delivered is marked delivered, so a
crash or an outage leaves the rest in the outbox for the next attempt.

The console is the embedded default (and what `run --once` uses); Slack plugs in beside it,
behind the same `storage.ports.Notifier`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console

from umbrellabot.app import render
from umbrellabot.app.work_files import owner_gone, process_owner
from umbrellabot.model.report import CycleReport
from umbrellabot.storage.ports import AlertOutbox, Notifier, PendingAlert


class ConsoleNotifier:
    """Alerts as a table on the console: a delivery target like Slack."""

    failures = 0  # printing does not fail the way a remote service does

    def __init__(self, console: Console, limit: int = 0) -> None:
        self._console = console
        self._limit = limit

    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        if alerts:
            self._console.print(render.alert_table([p.alert for p in alerts], self._limit))
        return [p.id for p in alerts]

    async def post_cycle_summary(self, report: CycleReport) -> bool:
        return False  # the commands print their own summary


async def flush_outbox(
    outbox: AlertOutbox,
    notifier: Notifier,
    batch: int = 500,
    now: float | None = None,
    owner: str | None = None,
) -> int:
    """Deliver every pending alert (due at `now`, default the current time); returns how many
    were delivered. Each batch is claimed by `owner` first, so that two processes on one state
    never deliver the same alert; what was not delivered is given back at the end."""
    claimant = owner or process_owner()
    for gone in await asyncio.to_thread(outbox.claim_owners):
        if owner_gone(gone):  # killed while delivering: its alerts are ours now
            await asyncio.to_thread(outbox.release_claims, gone)
    delivered = 0
    try:
        while pending := await asyncio.to_thread(outbox.claim_pending, claimant, batch, now):
            done = await notifier.deliver(pending)
            await asyncio.to_thread(outbox.mark_delivered, done)
            delivered += len(done)
            if len(done) < len(pending):  # the notifier could not take more now
                break
    finally:
        await asyncio.to_thread(outbox.release_claims, claimant)
    return delivered

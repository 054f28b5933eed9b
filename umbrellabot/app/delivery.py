"""Delivering alerts from the durable outbox. Only what was delivered is marked delivered, so a
crash or an outage leaves the rest in the outbox for the next attempt.

The console is the embedded default (and what `run --once` uses); Slack plugs in beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.console import Console

from umbrellabot.app import render
from umbrellabot.storage.sqlite_state import PendingAlert, StateStore


class Notifier(Protocol):
    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        """Tell people about `alerts`; return the ids of those delivered."""
        ...


class ConsoleNotifier:
    def __init__(self, console: Console, limit: int = 0) -> None:
        self._console = console
        self._limit = limit

    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        if alerts:
            self._console.print(render.alert_table([p.alert for p in alerts], self._limit))
        return [p.id for p in alerts]


async def flush_outbox(
    state: StateStore, notifier: Notifier, batch: int = 500, now: float | None = None
) -> int:
    """Deliver every pending alert (due at `now`, default the current time); returns how many
    were delivered."""
    delivered = 0
    while pending := state.pending_alerts(limit=batch, now=now):
        done = await notifier.deliver(pending)
        state.mark_delivered(done)
        delivered += len(done)
        if len(done) < len(pending):  # the notifier could not take more now
            break
    return delivered

"""Work done once however many processes share the state: the SQL detections and their
catch-up, the silence check, pruning, the digest, the reconciliation sweep and the Athena
tables' upkeep. The process holding the `scheduled-work` lease does it. The lease is renewed
every third of SCHEDULED_WORK_LEASE_S, so when its holder dies another process takes over within
one lease period; a clean stop gives it back at once. Ingest (listing, the queue) and delivery
run in every process: leases and claims keep each file and alert to one of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from umbrellabot.storage.ports import CycleLog

log = logging.getLogger(__name__)
DUTY = "scheduled-work"


class Duty:
    def __init__(self, cycles: CycleLog, owner: str, lease_s: float) -> None:
        self._cycles = cycles
        self._owner = owner
        self._lease_s = lease_s
        self.held = False

    async def renew(self, *, starting: bool = False) -> bool:
        """Take or keep the lease; whether this process holds it. A change is logged, but
        not the lease a process takes as it starts (the usual single process)."""
        held = await asyncio.to_thread(
            self._cycles.hold_duty, DUTY, self._owner, self._lease_s, time.time()
        )
        if held != self.held:
            log.log(
                logging.DEBUG if starting else logging.INFO,
                "this process %s the scheduled work (detections, silence check, digest, pruning)",
                "now does" if held else "no longer does",
            )
        self.held = held
        return held

    async def keep(self, stopping: asyncio.Event) -> None:
        """Renew until `stopping`; a state that cannot be reached keeps what was known."""
        while not stopping.is_set():
            try:
                await self.renew()
            except Exception:
                log.warning("could not renew the scheduled-work lease", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._lease_s / 3)

    async def release(self) -> None:
        if self.held:
            self.held = False
            await asyncio.to_thread(self._cycles.release_duty, DUTY, self._owner)

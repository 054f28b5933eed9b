"""The bot's eventID lookup with a door on the engine: the state index answers for free; a
lookup that would reach the engine (an Athena scan over the last days) is counted per user
(LOOKUP_RATE_PER_MINUTE) and a miss is remembered for MISS_TTL_S, so pasting UUIDs cannot run
up a query bill. Both go through `storage.ports.LookupGuard`, so a shared state shares them.
The reply says which stopped a lookup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from umbrellabot.query.lookup import EventLocator, FoundEvent
from umbrellabot.slack.replies import inline
from umbrellabot.slack.text import Message, fallback, section
from umbrellabot.storage.ports import LookupGuard

MISS_TTL_S = 600.0  # CloudTrail delivers late: a miss is not remembered for long


def _reply(summary: str, markdown: str) -> Message:
    return Message(fallback(summary), [section(markdown)])


def rate_limited(per_minute: int) -> Message:
    return _reply(
        "Too many lookups in a minute",
        f":hourglass: You asked for {per_minute} events that are not in the event index within a"
        " minute; each one is a query over the history, so I wait before the next one. Ask"
        " again in a minute (LOOKUP_RATE_PER_MINUTE).",
    )


def recently_missed(event_id: str) -> Message:
    minutes = int(MISS_TTL_S // 60)
    return _reply(
        "Looked up a moment ago",
        f":grey_question: I looked for {inline(event_id)} less than {minutes} minutes ago and"
        " found nothing, so I do not query the history again yet. CloudTrail delivers an event"
        " 5 to 15 minutes after the call: ask again later.",
    )


class GuardedLookup:
    def __init__(
        self,
        locator: EventLocator,
        guard: LookupGuard | None,
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._locator = locator
        self._guard = guard
        self._per_minute = per_minute
        self._clock = clock

    async def find(self, event_id: str, user: str) -> FoundEvent | Message | None:
        """The event; a Message when the door stopped the lookup; None when it is nowhere."""
        found = await self._locator.find_indexed(event_id)
        if found is not None or not self._locator.has_engine:
            return found
        guard, now = self._guard, self._clock()
        if guard is not None:
            if await asyncio.to_thread(guard.known_miss, event_id, now):
                return recently_missed(event_id)
            if not await asyncio.to_thread(guard.take_lookup, user, now, self._per_minute):
                return rate_limited(self._per_minute)
        found = await self._locator.find_in_engine(event_id)
        if found is None and guard is not None:
            await asyncio.to_thread(guard.remember_miss, event_id, now + MISS_TTL_S)
        return found

    async def first_to_answer(self, channel: str, ts: str) -> bool:
        """Whether this process answers the message: several processes may run the bot on one
        state (Slack spreads events, and their retries, over the connections)."""
        if self._guard is None or not ts:
            return True
        return await asyncio.to_thread(self._guard.claim_mention, channel, ts, self._clock())

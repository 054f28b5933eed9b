"""Publishing the App Home tab when someone opens it (`app_home_opened`): the state gathered
from the storage ports, the view from app_home.py, `views.publish` for that person. A person
who may not use the bot sees only that. `gather_status` is what `status` shows too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot import __version__
from umbrellabot.rules.rule import Rule
from umbrellabot.slack import replies
from umbrellabot.slack.app_home import OPEN_DAYS, OPEN_SHOWN, HomeState, home_view
from umbrellabot.slack.gate import MentionGate
from umbrellabot.slack.text import verbatim
from umbrellabot.storage.ports import AlertOutbox, CycleLog, DeliveryWatch, FileLedger, Triage

log = logging.getLogger(__name__)
StatusSource = Callable[[], Awaitable[replies.StatusInfo]]


async def gather_status(
    rules: Sequence[Rule],
    cycles: CycleLog | None,
    outbox: AlertOutbox | None,
    files: FileLedger | None,
    extra: Sequence[tuple[str, str]] = (),
) -> replies.StatusInfo:
    """What `status` and the App Home show of the state: the last cycle, the outbox, the files
    given up on (each read on a thread: the ingest cycle may hold the database)."""
    last_cycle = await asyncio.to_thread(cycles.last_cycle) if cycles else None
    depth = await asyncio.to_thread(outbox.outbox_depth) if outbox else None
    abandoned = await asyncio.to_thread(files.abandoned_files) if files else []
    return replies.StatusInfo(
        version=__version__,
        rules_loaded=len(rules),
        rules_enabled=sum(rule.enabled for rule in rules),
        last_cycle=last_cycle,
        outbox_depth=depth,
        abandoned=[(state.key, state.reason or "") for state in abandoned],
        extra=extra,
    )


class AppHome:
    def __init__(
        self,
        client: AsyncWebClient,
        triage: Triage,
        gate: MentionGate,
        deliveries: DeliveryWatch | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._triage = triage
        self._gate = gate
        self._deliveries = deliveries
        self._clock = clock

    async def publish(self, user: str, status: StatusSource) -> None:
        if not user:
            return
        refusal = self._gate.refusal(user, "", ())
        if refusal is not None and refusal != "channel":  # the tab is no channel
            view = {"type": "home", "blocks": verbatim(replies.not_allowed(refusal).blocks)}
        else:
            view = home_view(await self._state(status))
        try:
            await self._client.views_publish(user_id=user, view=view)
        except (SlackApiError, SlackClientError) as err:
            log.warning("publishing the App Home of %s failed: %s", user, err)

    async def _state(self, status: StatusSource) -> HomeState:
        now = self._clock()
        since = now - OPEN_DAYS * 86400
        counts, open_alerts = await asyncio.to_thread(self._triage.open_alerts, since, OPEN_SHOWN)
        mutes = await asyncio.to_thread(self._triage.active_mutes, now)
        newest = None
        if self._deliveries is not None:
            known = await asyncio.to_thread(self._deliveries.deliveries)
            newest = max((d.last_modified for d in known.values()), default=None)
        return HomeState(counts, open_alerts, mutes, await status(), newest, now)

"""Alerts from the durable outbox to Slack: a `storage.ports.Notifier`.

- Channel: the first route that matches (routing.py), the rule's own, else `SLACK_CHANNEL`;
  alerts below `ALERT_MIN_SEVERITY` are handed back as handled, unposted.
- Never twice: the outbox is unique per (eventID, rule); an alert is marked delivered (with its
  roll-up count) as soon as Slack accepted its message.
- Never lost: an outage, 5xx, network error, rate limit beyond the SDK's retries or a refusal
  stops the round for that channel; its alerts stay in the outbox, retried later (exponential,
  capped, at least Retry-After). A message refused for its content goes once more as text.
  Posts to a channel are `SLACK_POST_INTERVAL_S` apart; channels run concurrently.
- Roll-up per channel, rule and principal in windows of `SLACK_ROLLUP_WINDOW_MINUTES`: the
  first `SLACK_ROLLUP_THRESHOLD` alerts on their own, then one parent message whose thread lists
  the rest and whose count is kept up to date (`rollup.py` decides). Windows are in the roll-up
  store: a restart continues them; processes add to one, only the one that claimed the parent
  posts it, and the others' alerts wait a round for its thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.model.accounts import NO_NAMES, AccountNames
from umbrellabot.model.alerts import Alert
from umbrellabot.model.report import CycleReport
from umbrellabot.model.severity import Severity
from umbrellabot.slack.alert_messages import (
    cycle_summary_message,
    follow_up_message,
    rollup_replies,
)
from umbrellabot.slack.client import describe_error
from umbrellabot.slack.posting import (
    IdempotentPoster,
    Pacer,
    PostRefused,
    PostStopped,
    alert_ref,
    parent_ref,
    post_retries,
)
from umbrellabot.slack.rollup import (
    RollupKey,
    RollupShape,
    event_span,
    extend_window,
    plan_rollups,
    rollup_key,
)
from umbrellabot.slack.routing import Router
from umbrellabot.slack.text import Message
from umbrellabot.slack.triage_messages import rollup_parent_message, triaged_alert_message
from umbrellabot.storage.ports import AlertOutbox, PendingAlert, RollupStore, RollupWindow

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
PARENT_CLAIM_S = 120.0  # a process that dies after claiming a parent holds it this long


class SlackNotifier:
    """`storage.ports.Notifier` for Slack; see the module docstring for what it guarantees."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        outbox: AlertOutbox,
        rollups: RollupStore,
        channel: str,
        rule_channels: Mapping[str, str] | None = None,
        router: Router | None = None,
        account_names: AccountNames = NO_NAMES,
        min_severity: Severity = Severity.HIGH,
        rollup_threshold: int = 5,
        rollup_window_minutes: int = 10,
        post_interval_s: float = 1.0,
        cycle_summary: bool = False,
        retry_base_s: float = 30.0,
        retry_max_s: float = 900.0,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self._poster = IdempotentPoster(client, **post_retries(client), sleep=sleep, clock=clock)
        self._outbox = outbox
        self._rollups = rollups
        self.channel = channel
        self._router = router or Router([], channel, rule_channels=rule_channels)
        self._names = account_names
        self._min_severity = min_severity
        self._threshold = max(rollup_threshold, 1)
        self.rollup_shape = RollupShape(self._threshold, rollup_window_minutes)
        self._window_s = rollup_window_minutes * 60.0
        self._cycle_summary = cycle_summary
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._pacer = Pacer(post_interval_s, monotonic, sleep)
        self._owner = uuid.uuid4().hex  # who claims a roll-up's parent
        self.posts = 0  # chat.postMessage calls Slack accepted
        self.updates = 0  # chat.update calls Slack accepted
        self.skipped = 0  # alerts below min_severity, handled without a post
        self.failures = 0  # delivery rounds to a channel cut short (outage, 5xx, refusal)

    def channel_for(self, alert: Alert) -> str:
        return self._router.channel_for(alert)

    # storage.ports.Notifier

    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        now = self._clock()
        await asyncio.to_thread(self._rollups.prune_rollups, now - self._window_s - 86_400)
        handled: list[int] = []
        by_channel: dict[str, list[PendingAlert]] = {}
        for pending in alerts:
            if pending.alert.severity < self._min_severity:
                handled.append(pending.id)
                continue
            by_channel.setdefault(self.channel_for(pending.alert), []).append(pending)
        if handled:
            self.skipped += len(handled)
            log.info(
                "%d alert(s) below ALERT_MIN_SEVERITY=%s not posted",
                len(handled),
                self._min_severity.label,
            )
        results = await asyncio.gather(
            *(self._deliver_channel(channel, items, now) for channel, items in by_channel.items())
        )
        for delivered in results:
            handled.extend(delivered)
        return handled

    # one channel

    async def _deliver_channel(
        self, channel: str, items: list[PendingAlert], now: float
    ) -> list[int]:
        delivered: list[int] = []
        failed: set[int] = set()
        follow_ups = [p for p in items if p.alert.reply_to is not None]  # never rolled up
        items = [p for p in items if p.alert.reply_to is None]
        known = await asyncio.to_thread(self._windows, channel, items, now)
        plan = plan_rollups(
            items,
            lambda key: known.get(key) or RollupWindow(channel, key[0], key[1], now),
            self._threshold,
        )
        windows = plan.windows
        try:
            for pending in follow_ups:
                if await self._post_follow_up(channel, pending, failed):
                    await asyncio.to_thread(self._outbox.mark_delivered, [pending.id])
                    delivered.append(pending.id)
            for key, pending in plan.individual:
                if await self._post_alert(channel, pending, failed):
                    window = windows[key]
                    window.alerts += 1
                    extend_window(window, [pending.alert])
                    await asyncio.to_thread(self._rollups.save_rollup, window, [pending.id])
                    delivered.append(pending.id)
            for key, group in plan.rolled.items():
                await self._deliver_rolled(channel, windows[key], group, delivered, failed)
        except PostStopped as stop:
            self.failures += 1
            done = set(delivered) | failed
            left = [p for p in [*follow_ups, *items] if p.id not in done]
            log.warning(
                "Slack delivery to %s stopped (%s); %d alert(s) stay in the outbox",
                channel,
                stop.reason,
                len(left),
            )
            for pending in left:
                await self._fail(pending, stop.reason, stop.retry_after)
        return delivered

    def _windows(
        self, channel: str, items: Sequence[PendingAlert], now: float
    ) -> dict[RollupKey, RollupWindow]:
        """The current roll-up window of each (rule, principal) among `items` (in a thread)."""
        found = {}
        for key in {rollup_key(pending.alert) for pending in items}:
            window = self._rollups.rollup_window(channel, key[0], key[1], now - self._window_s)
            if window is not None:
                found[key] = window
        return found

    async def _post_alert(self, channel: str, pending: PendingAlert, failed: set[int]) -> bool:
        message = triaged_alert_message(pending.alert, pending.id, names=self._names)
        refs, recheck = [alert_ref(pending.alert)], pending.attempts > 0
        try:
            posted = await self._post(channel, message, refs=refs, recheck=recheck)
        except PostRefused as refused:
            log.warning("Slack refused alert %d (%s); sending it as text", pending.id, refused)
            try:
                posted = await self._post(channel, Message(message.text, []), refs=refs)
            except PostRefused as again:
                await self._fail(pending, str(again), None)
                failed.add(pending.id)
                return False
        await asyncio.to_thread(self._outbox.record_message, pending.id, *posted)
        return True

    async def _post_follow_up(self, channel: str, pending: PendingAlert, failed: set[int]) -> bool:
        """A line in the thread of the alert it follows (unknown thread: a message of its own)."""
        parent_key = pending.alert.reply_to
        parent = await asyncio.to_thread(self._outbox.message_of, parent_key or "")
        if parent is None:
            return await self._post_alert(channel, pending, failed)
        refs = [alert_ref(pending.alert)]
        try:
            await self._post(
                channel,
                follow_up_message(pending.alert),
                thread_ts=parent[1],
                to=parent[0],
                refs=refs,
                recheck=pending.attempts > 0,
            )
        except PostRefused as refused:
            await self._refused([pending], refused, failed)
            return False
        return True

    async def _deliver_rolled(
        self,
        channel: str,
        window: RollupWindow,
        group: list[PendingAlert],
        delivered: list[int],
        failed: set[int],
    ) -> None:
        sample = group[0]
        shown = window.alerts  # the count the parent shows (an existing parent: updated below)
        if window.parent_ts is None and not await asyncio.to_thread(
            self._rollups.claim_parent, window, self._owner, self._clock(), PARENT_CLAIM_S
        ):
            log.info("another process posts the roll-up of %s: its thread next round", sample.id)
            return
        if window.parent_ts is None:
            planned = window.alerts + len(group)
            first, last = event_span(window, [p.alert for p in group])
            planned_window = replace(
                window, alerts=planned, first_event_time=first, last_event_time=last
            )
            try:
                parent_channel, ts = await self._post(
                    channel,
                    rollup_parent_message(
                        planned_window, sample.alert, sample.id, self.rollup_shape
                    ),
                    refs=[
                        parent_ref(channel, window.rule_id, window.principal, window.window_start)
                    ],
                    recheck=any(p.attempts for p in group),
                )
            except PostRefused as refused:
                await self._refused(group, refused, failed)
                return
            window.parent_channel, window.parent_ts = parent_channel, ts
            await asyncio.to_thread(self._rollups.save_rollup, window)
            shown = planned
        offset = 0
        for reply in rollup_replies([p.alert for p in group], window.alerts + 1):
            chunk = group[offset : offset + reply.alerts]
            offset += reply.alerts
            try:
                await self._post(
                    channel,
                    reply.message,
                    thread_ts=window.parent_ts,
                    to=window.parent_channel,
                    refs=[alert_ref(p.alert) for p in chunk],
                    recheck=any(p.attempts for p in chunk),
                )
            except PostRefused as refused:
                await self._refused(chunk, refused, failed)
                continue
            except PostStopped:
                if shown != window.alerts:  # some replies went out: show them in the count
                    await self._update_parent(window, sample)
                raise
            window.alerts += len(chunk)
            extend_window(window, [p.alert for p in chunk])
            await asyncio.to_thread(self._rollups.save_rollup, window, [p.id for p in chunk])
            delivered.extend(p.id for p in chunk)
        if shown != window.alerts:
            await self._update_parent(window, sample)

    async def _update_parent(self, window: RollupWindow, sample: PendingAlert) -> None:
        """Best effort: the alerts are delivered either way; the next round updates again.
        The stored window is read again for its acknowledgement (the bot may have set it)."""
        if window.parent_channel is None or window.parent_ts is None:
            return
        stored = await asyncio.to_thread(
            self._rollups.rollup_by_parent, window.parent_channel, window.parent_ts
        )
        if stored is not None:  # its count too: other processes may have added to it
            window.alerts = max(window.alerts, stored.alerts)
            window.acked_by, window.acked_at, window.acked = (
                stored.acked_by,
                stored.acked_at,
                stored.acked,
            )
        message = rollup_parent_message(window, sample.alert, sample.id, self.rollup_shape)
        try:
            await self.client.chat_update(
                channel=window.parent_channel,
                ts=window.parent_ts,
                text=message.text,
                blocks=message.blocks,
            )
            self.updates += 1
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as err:
            log.warning("could not update the roll-up count in Slack: %s", describe_error(err)[0])

    # Slack calls

    async def _post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        to: str | None = None,
        *,
        refs: Sequence[str] = (),
        recheck: bool = False,
    ) -> tuple[str, str]:
        """chat.postMessage to `to` (or `channel`, the pace's key), telling `refs` once."""
        await self._pacer.wait(channel)
        try:
            posted = await self._poster.post(
                to or channel, message, refs=refs, thread_ts=thread_ts, recheck=recheck
            )
        finally:
            self._pacer.done(channel)
        self.posts += 1
        return posted

    async def _refused(
        self, items: Sequence[PendingAlert], refused: PostRefused, failed: set[int]
    ) -> None:
        """Slack refused the message telling `items`: each waits for a later round."""
        for pending in items:
            await self._fail(pending, str(refused), None)
            failed.add(pending.id)

    async def _fail(self, pending: PendingAlert, reason: str, retry_after: float | None) -> None:
        delay = min(self._retry_base_s * 2 ** max(pending.attempts, 0), self._retry_max_s)
        if retry_after is not None:
            delay = max(delay, retry_after)
        retry_at = self._clock() + delay
        await asyncio.to_thread(self._outbox.mark_delivery_failed, pending.id, reason, retry_at)

    # the optional cycle summary

    async def post_summary(
        self,
        *,
        files: int,
        records: int = 0,
        alerts: int = 0,
        failed: int = 0,
        by_severity: Mapping[Severity, int] | None = None,
    ) -> bool:
        """ "Processed N log files ..." to SLACK_CHANNEL (SLACK_CYCLE_SUMMARY): whether posted."""
        if not self._cycle_summary or files <= 0:
            return False
        message = cycle_summary_message(
            files=files, records=records, alerts=alerts, failed=failed, by_severity=by_severity
        )
        try:
            await self._post(self.channel, message)
        except (PostStopped, PostRefused) as err:
            log.warning("cycle summary not posted: %s", err)
            return False
        return True

    async def post_cycle_summary(self, report: CycleReport) -> bool:
        """The summary of one cycle (`Notifier`), when SLACK_CYCLE_SUMMARY is on."""
        return await self.post_summary(
            files=report.files,
            records=report.records,
            alerts=report.new_alerts,
            failed=len(report.failed) + len(report.abandoned),
            by_severity=report.by_severity,
        )

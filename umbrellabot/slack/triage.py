"""Triage from Slack: the buttons on an alert (Acknowledge, Mute 1 h / 24 h / 7 d, Details) and
the mention commands `mutes`, `unmute <id>` and `acks [N]`, over `storage.ports.Triage`.

Each button press is acknowledged to Slack first, before any state or Web API call (Slack wants
the ack within 3 s), and worked on in a task of the bot's. The door is the bot's (gate.py): a
person who may not use the bot is refused with an ephemeral line and nothing is stored. A
button's value is an outbox id; the alert it names is read back from the state, and the message
is rebuilt from it (triage_messages.py), so nothing Slack sends back is trusted as content.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.model.accounts import NO_NAMES, AccountNames
from umbrellabot.model.triage import MUTE_DURATIONS, Ack, Mute, MuteKey
from umbrellabot.slack import commands, replies
from umbrellabot.slack.alert_messages import code, plain
from umbrellabot.slack.gate import MentionGate
from umbrellabot.slack.membership import Membership
from umbrellabot.slack.rollup import DEFAULT_SHAPE, RollupShape
from umbrellabot.slack.text import Message, context, fallback, section, verbatim
from umbrellabot.slack.thread_posts import post_in_thread
from umbrellabot.slack.triage_messages import (
    ACK_ACTION,
    DETAILS_ACTION,
    MUTE_ACTION,
    ROLLUP_BLOCK,
    mute_line,
    parse_value,
    rollup_parent_message,
    triaged_alert_message,
    user_mention,
    when,
)
from umbrellabot.storage.ports import PendingAlert, RollupStore, RollupWindow, Triage

log = logging.getLogger(__name__)
Spawn = Callable[[Awaitable[None]], None]
# typed, verb, channel, thread, user
CheckOut = Callable[[str, str, str, str | None, str], Awaitable[None]]


def _text(markdown: str, summary: str) -> Message:
    return Message(fallback(summary), [section(markdown)])


class SlackTriage:
    def __init__(
        self,
        client: AsyncWebClient,
        triage: Triage,
        gate: MentionGate,
        *,
        spawn: Spawn,
        check_out: CheckOut,
        names: AccountNames = NO_NAMES,
        muters: frozenset[str] = frozenset(),
        membership: Membership | None = None,
        rollups: RollupStore | None = None,
        rollup_shape: RollupShape = DEFAULT_SHAPE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._membership = membership
        self._rollups = rollups
        self._rollup_shape = rollup_shape
        self._names = names
        self._muters = muters
        self._client = client
        self._triage = triage
        self._gate = gate
        self._spawn = spawn
        self._check_out = check_out
        self._clock = clock

    def register(self, app: AsyncApp) -> None:
        for action_id, work in (
            (ACK_ACTION, self._acknowledge),
            (MUTE_ACTION, self._mute),
            (DETAILS_ACTION, self._details),
        ):
            app.action(action_id)(self._listener(work))

    def _listener(
        self, work: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
            await ack()  # first: nothing else may delay it past Slack's 3 s
            self._spawn(self._guarded(work, body))

        return listener

    async def _guarded(
        self, work: Callable[[dict[str, Any]], Awaitable[None]], body: dict[str, Any]
    ) -> None:
        user, channel, refusal = self._gate.may_act(body)
        if refusal is None and self._membership is not None:
            refusal = await self._membership.refusal(user)
        if refusal is not None:
            log.info("refused a button press of %s in %s: %s not allowed", user, channel, refusal)
            await self._ephemeral(channel, user, replies.not_allowed(refusal))
            return
        try:
            await work(body)
        except (SlackApiError, SlackClientError) as err:
            log.warning(
                "a button press of %s in %s: Slack refused the answer: %s", user, channel, err
            )

    # the buttons

    async def _pressed(self, body: dict[str, Any]) -> tuple[PendingAlert, str | None] | None:
        """The stored alert the button names, and the mute duration; an ephemeral line and None
        for a value that is no alert of ours (now)."""
        user, channel, _ = self._gate.may_act(body)
        action = (body.get("actions") or [{}])[0]
        value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
        parsed = parse_value(value)
        stored = await asyncio.to_thread(self._triage.alert_by_id, parsed[0]) if parsed else None
        if parsed is None or stored is None:
            log.warning("a button press of %s names no stored alert: %r", user, value[:40])
            note = "That alert is no longer in my state (older than STATE_RETENTION_DAYS)."
            await self._ephemeral(channel, user, _text(note, note))
            return None
        return stored, parsed[1]

    @staticmethod
    def _where(body: dict[str, Any]) -> tuple[str, str]:
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        ts = str(container.get("message_ts") or (body.get("message") or {}).get("ts") or "")
        return channel, ts

    @staticmethod
    def _on_parent(body: dict[str, Any]) -> bool:
        """Whether the button is a roll-up parent's (it acts on the parent's thread)."""
        return bool((body.get("actions") or [{}])[0].get("block_id") == ROLLUP_BLOCK)

    async def _acknowledge(self, body: dict[str, Any]) -> None:
        pressed = await self._pressed(body)
        if pressed is None:
            return
        stored, _ = pressed
        user, _, _ = self._gate.may_act(body)
        if self._on_parent(body):
            channel, ts = self._where(body)
            window = await asyncio.to_thread(
                self._triage.acknowledge_thread, channel, ts, user, self._clock()
            )
            if window is not None:
                log.info("%s acknowledged the %d alerts of a roll-up", user, window.acked)
                await self._update_parent(body, stored, window)
                return
        ack = await asyncio.to_thread(self._triage.acknowledge, stored.id, user, self._clock())
        await self._update(body, stored, ack)

    async def _mute(self, body: dict[str, Any]) -> None:
        pressed = await self._pressed(body)
        if pressed is None:
            return
        stored, duration = pressed
        if duration not in MUTE_DURATIONS:
            return
        user, channel, _ = self._gate.may_act(body)
        if self._muters and user not in self._muters:
            note = "Only the people in ALLOWED_MUTERS may mute alerts; acknowledging is open."
            await self._ephemeral(channel, user, _text(f":no_entry: {note}", note))
            return
        now = self._clock()
        until = now + MUTE_DURATIONS[duration].total_seconds()
        key = MuteKey.of(stored.alert)
        mute = await asyncio.to_thread(self._triage.add_mute, key, until, user, now, stored.id)
        log.info("%s muted %s until %s (mute %d)", user, key.describe(), when(until), mute.id)
        if not (self._on_parent(body) and await self._update_parent(body, stored, mute=mute)):
            await self._update(body, stored, mute=mute)
        channel, ts = self._where(body)  # the message's channel (a DM has no channel object)
        line = (
            f"{mute_line(mute)}. The alerts it silences are still enriched and kept in the"
            " outbox, marked muted: none is lost."
        )
        await post_in_thread(self._client, channel, ts, Message(fallback(line), [context(line)]))

    async def _details(self, body: dict[str, Any]) -> None:
        pressed = await self._pressed(body)
        if pressed is None:
            return
        stored, _ = pressed
        channel, ts = self._where(body)
        user, _, _ = self._gate.may_act(body)
        if not stored.alert.event_id:
            note = "This alert is about a group of events, not one: its message says which."
            await post_in_thread(self._client, channel, ts, _text(note, note))
            return
        await self._check_out(stored.alert.event_id, "check out", channel, ts, user)

    async def _update(
        self,
        body: dict[str, Any],
        stored: PendingAlert,
        ack: Ack | None = None,
        mute: Mute | None = None,
    ) -> None:
        """The alert's message rebuilt with what is known of it now."""
        if ack is None:
            ack = await asyncio.to_thread(self._triage.ack_of, stored.id)
        if mute is None:
            now, key = self._clock(), MuteKey.of(stored.alert)
            active = await asyncio.to_thread(self._triage.active_mutes, now)
            mute = next((m for m in active if m.key == key), None)
        channel, ts = self._where(body)
        message = triaged_alert_message(stored.alert, stored.id, ack, mute, self._names)
        await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )

    async def _update_parent(
        self,
        body: dict[str, Any],
        stored: PendingAlert,
        window: RollupWindow | None = None,
        mute: Mute | None = None,
    ) -> bool:
        """The roll-up parent rebuilt from its stored window; False when it is no parent."""
        channel, ts = self._where(body)
        if window is None and self._rollups is not None:
            window = await asyncio.to_thread(self._rollups.rollup_by_parent, channel, ts)
        if window is None:
            return False
        message = rollup_parent_message(window, stored.alert, stored.id, self._rollup_shape, mute)
        await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )
        return True

    async def _ephemeral(self, channel: str, user: str, message: Message) -> None:
        try:
            await self._client.chat_postEphemeral(
                channel=channel, user=user, text=message.text, blocks=verbatim(message.blocks)
            )
        except (SlackApiError, SlackClientError) as err:
            log.warning("an ephemeral line to %s in %s failed: %s", user, channel, err)

    # the mention commands

    async def answer(self, command: commands.Command) -> Message:
        match command:
            case commands.Mutes():
                active = await asyncio.to_thread(self._triage.active_mutes, self._clock())
                return mutes_reply(active)
            case commands.Unmute(mute_id=mute_id, typed=typed):
                return await self._unmute(mute_id, typed)
            case commands.Acks(limit=limit):
                return acks_reply(await asyncio.to_thread(self._triage.acks, limit))
        raise ValueError(f"not a triage command: {command!r}")

    async def _unmute(self, mute_id: int | None, typed: str) -> Message:
        ended = (
            await asyncio.to_thread(self._triage.end_mute, mute_id, self._clock())
            if mute_id is not None
            else None
        )
        if ended is None:
            note = f"No active mute {plain(typed, 40) or '?'}: `mutes` lists them."
            return _text(note, note)
        line = f":bell: Mute {ended.id} ended: {code(ended.key.describe(), 400)} alerts again."
        return _text(line, f"Mute {ended.id} ended")


def mutes_reply(active: list[Mute]) -> Message:
    if not active:
        return _text(":bell: No mutes: every alert is posted.", "No mutes")
    lines = [mute_line(mute) for mute in active[:30]]
    more = f"\n… and {len(active) - 30} more" if len(active) > 30 else ""
    text = f"*Active mutes ({len(active)})*\n" + "\n".join(lines) + more
    return _text(text, f"{len(active)} active mutes")


def acks_reply(acks: list[tuple[Ack, Any]]) -> Message:
    if not acks:
        return _text("No alert was acknowledged yet.", "No acknowledgements")
    lines = [
        f"{user_mention(ack.user)} at {when(ack.at)}: {plain(alert.rule_title, 200)}"
        f" ({code(alert.principal or 'unknown', 200)}, eventID {code(alert.event_id or '-', 60)})"
        for ack, alert in acks
    ]
    return _text("*Acknowledged alerts*\n" + "\n".join(lines), f"{len(acks)} acknowledged alerts")

"""The Slack bot: a slack_bolt AsyncApp over Socket Mode that answers `@umbrellabot check out
<eventID>` (and `show`, `recent`, `status`, `help`) in the thread of the mention.

It runs in the daemon's event loop beside the ingest scheduler and never blocks it: lookups are
async, state reads go to a thread, and each envelope is acked at once; a slow lookup or
`recent` says "Looking up …" in the thread and is answered when done.

Who gets an answer: `gate.py`, and the first process to claim the message when several share
one state. `recent [N]` reads a RecentSource the daemon passes (the alert outbox, or a query
over the last days). Every failure gets a reply: an invalid eventID, an unknown event, a failed
query, and any unexpected error (logged with a reference the reply quotes).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import (
    InvalidQueryInput,
    QueryError,
    valid_event_id,
)
from umbrellabot.query.story import build_story
from umbrellabot.rules.rule import Rule
from umbrellabot.slack import commands, replies, story_reply
from umbrellabot.slack.client import api_url, bolt_logger
from umbrellabot.slack.gate import MentionGate
from umbrellabot.slack.guarded_lookup import GuardedLookup
from umbrellabot.slack.home_tab import AppHome, gather_status
from umbrellabot.slack.membership import Membership
from umbrellabot.slack.recent import RecentSource
from umbrellabot.slack.rollup import DEFAULT_SHAPE, RollupShape
from umbrellabot.slack.text import Message
from umbrellabot.slack.thread_posts import acknowledged_if_slow, post_in_thread, upload_record
from umbrellabot.slack.triage import SlackTriage
from umbrellabot.storage.ports import StateBackend

log = logging.getLogger(__name__)
T = TypeVar("T")

ACK_AFTER_S = 1.0  # a slow `recent` is acknowledged after this long

StatusExtra = Callable[[], Awaitable[Sequence[tuple[str, str]]]]


@dataclass(frozen=True)
class BotConfig:
    """What the bot needs to connect and whom it answers (app/wiring.py reads it from the
    settings)."""

    bot_token: str  # xoxb-
    app_token: str  # xapp-: Socket Mode
    api_url: str | None = None
    allowed_channels: frozenset[str] = frozenset()  # empty: any
    allowed_users: frozenset[str] = frozenset()  # empty: anyone
    allow_external_users: bool = False  # Slack Connect: people of other workspaces
    allowed_muters: frozenset[str] = frozenset()  # empty: whoever may use the bot
    allowed_usergroups: frozenset[str] = frozenset()  # empty: no group needed
    allow_guests: bool = False
    lookup_days: int = 90
    lookup_timeout_s: float = 330.0
    lookup_rate_per_minute: int = 6  # engine lookups per user; 0: no limit
    account_names: Mapping[str, str] = field(default_factory=dict)
    rollup_shape: RollupShape = DEFAULT_SHAPE  # what a roll-up parent says, when rebuilt


class SlackBotError(Exception):
    """The bot cannot connect (Slack refused a token or cannot be reached); one line."""


class SlackBot:
    """The AsyncApp with its listeners, and the Socket Mode connection: `await start()` once the
    loop runs, `await stop()` to leave (waits briefly for answers in flight)."""

    def __init__(
        self,
        config: BotConfig,
        *,
        locator: EventLocator,
        rules: Sequence[Rule],
        state: StateBackend | None = None,
        recent: RecentSource | None = None,
        recent_label: str = "the alert history",
        status_extra: StatusExtra | None = None,
        max_concurrent_lookups: int = 4,
        ping_interval_s: float = 10,
        slow_ack_after_s: float = ACK_AFTER_S,
    ) -> None:
        self.config = config
        self.rules = list(rules)
        self._lookup = GuardedLookup(
            locator, state.lookups if state else None, config.lookup_rate_per_minute
        )
        self._state = state
        self._recent = recent
        self._recent_label = recent_label
        self._status_extra = status_extra
        self._lookups = asyncio.Semaphore(max_concurrent_lookups)
        self._ping_interval_s = ping_interval_s
        self._slow_ack_after_s = slow_ack_after_s
        self._gate = MentionGate(
            config.allowed_channels,
            config.allowed_users,
            allow_external=config.allow_external_users,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handler: AsyncSocketModeHandler | None = None
        self.envelopes_handled = 0  # Socket Mode envelopes dispatched (their answers spawned)
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None
        self.bot_name = "umbrellabot"
        self.client = AsyncWebClient(
            token=config.bot_token,
            base_url=api_url(config.api_url),
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            ],
        )
        self.app = AsyncApp(
            client=self.client,
            logger=bolt_logger(),
            name="umbrellabot",
            request_verification_enabled=False,  # Socket Mode: no HTTP requests to verify
            # The listeners only spawn the answer, so acknowledging after them is immediate,
            # and once an envelope is dispatched its answer is among the tasks `idle` awaits.
            process_before_response=True,
        )
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.event("app_home_opened")(self._on_home)
        self._membership = Membership(
            self.client,
            allow_guests=config.allow_guests,
            usergroups=config.allowed_usergroups,
        )
        self._home = (
            AppHome(self.client, state.triage, self._gate, state.deliveries) if state else None
        )
        self._triage: SlackTriage | None = None
        if state is not None:  # the buttons on alerts, `mutes`, `unmute`, `acks`
            self._triage = SlackTriage(
                self.client,
                state.triage,
                self._gate,
                spawn=self._run,
                check_out=self._check_out,
                names=config.account_names,
                muters=config.allowed_muters,
                membership=self._membership,
                rollups=state.rollups,
                rollup_shape=config.rollup_shape,
            )
            self._triage.register(self.app)

    # lifecycle

    async def start(self) -> None:
        """Check both tokens (auth.test, apps.connections.open), then open the Socket Mode
        connection. Raises SlackBotError when Slack refuses a token or cannot be reached; once
        connected, slack_sdk reconnects by itself (disconnect messages, stale pings)."""
        try:
            auth = await self.client.auth_test()
        except SlackApiError as err:
            error = err.response.get("error")
            raise SlackBotError(f"Slack refused SLACK_BOT_TOKEN: {error}") from None
        except SlackClientError as err:
            raise SlackBotError(
                f"cannot reach Slack at {api_url(self.config.api_url)}: {err}"
            ) from None
        self.bot_user_id = self._gate.bot_user_id = auth.get("user_id")
        self._gate.home_team = auth.get("team_id")
        self.bot_id = auth.get("bot_id")
        self.bot_name = str(auth.get("user") or self.bot_name)
        handler = AsyncSocketModeHandler(
            self.app,
            self.config.app_token,
            web_client=self.client,
            ping_interval=self._ping_interval_s,
        )
        try:
            # Asked here, so that a refused app token is an error and not an endless retry.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await handler.connect_async()  # type: ignore[no-untyped-call]
        except BaseException as err:
            await handler.close_async()  # type: ignore[no-untyped-call]
            if isinstance(err, SlackApiError):
                error = err.response.get("error")
                raise SlackBotError(f"Slack refused SLACK_APP_TOKEN: {error}") from None
            if isinstance(err, SlackClientError):
                raise SlackBotError(f"cannot open Socket Mode: {err}") from None
            raise
        # Request listeners run in order: this one runs once Bolt has dispatched the envelope.
        handler.client.socket_mode_request_listeners.append(self._envelope_done)
        self._handler = handler
        log.info("Slack bot connected as %s (%s)", self.bot_name, self.bot_user_id)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Close the connection; answers in flight get `grace_s` to finish, then are cancelled."""
        if self._handler is not None:
            handler, self._handler = self._handler, None
            await handler.close_async()  # type: ignore[no-untyped-call]
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace_s)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)

    async def __aenter__(self) -> SlackBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def socket_client(self) -> Any:
        """The slack_sdk SocketModeClient (None before start)."""
        return self._handler.client if self._handler is not None else None

    async def idle(self) -> None:
        """Wait until no answer is in flight (for tests and shutdown)."""
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.wait(pending)

    # events

    async def _envelope_done(self, client: Any, request: Any) -> None:
        self.envelopes_handled += 1

    def _spawn(self, event: dict[str, Any]) -> None:
        self._run(self._handle(event))

    def _run(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_mention(self, event: dict[str, Any]) -> None:
        self._spawn(event)

    async def _on_home(self, event: dict[str, Any]) -> None:
        if event.get("tab") == "home" and self._home is not None:
            self._run(self._home.publish(str(event.get("user") or ""), self.status_info))

    async def _on_message(self, event: dict[str, Any]) -> None:
        # Only direct messages; a mention in a channel arrives as app_mention as well.
        if event.get("channel_type") == "im" and not event.get("subtype"):
            self._spawn(event)

    async def _handle(self, event: dict[str, Any]) -> None:
        verdict = self._gate.verdict(event)
        channel, thread = verdict.channel, verdict.thread
        if (verdict.answer or verdict.refusal) and not await self._first(channel, event):
            return  # another process answers it
        refusal = verdict.refusal
        if refusal is None and verdict.answer:
            refusal = await self._membership.refusal(verdict.user)
        if refusal is not None:
            log.info("refused a request from %s in %s: %s", verdict.user, channel, refusal)
            await self._post(channel, thread, replies.not_allowed(refusal))
            return
        if not verdict.answer:
            return
        command = commands.parse(str(event.get("text") or ""))
        try:
            await self._answer(command, channel, thread, verdict.user)
        except asyncio.CancelledError:
            raise
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("answering %r in %s failed (reference %s)", command, channel, reference)
            await self._post(channel, thread, replies.something_went_wrong(reference))

    async def _first(self, channel: str, event: dict[str, Any]) -> bool:
        return await self._lookup.first_to_answer(channel, str(event.get("ts") or ""))

    async def _answer(
        self, command: commands.Command, channel: str, thread: str | None, user: str
    ) -> None:
        match command:
            case commands.CheckOut(event_id=typed, verb=verb):
                await self._check_out(typed, verb, channel, thread, user)
            case commands.Status():
                await self._post(channel, thread, replies.status_reply(await self.status_info()))
            case commands.Recent(limit=limit, note=note):
                await self._recent_alerts(limit, note, channel, thread)
            case commands.Mutes() | commands.Unmute() | commands.Acks():
                if self._triage is None:
                    await self._post(channel, thread, replies.recent_unavailable())
                else:
                    await self._post(channel, thread, await self._triage.answer(command))
            case commands.Unknown(text=text):
                await self._post(channel, thread, replies.unknown_command(text, self.bot_name))
            case commands.Help():
                await self._post(channel, thread, replies.help_reply(self.bot_name))

    # commands

    async def _check_out(
        self, typed: str, verb: str, channel: str, thread: str | None, user: str
    ) -> None:
        try:
            event_id = valid_event_id(typed)  # before anything else: no lookup of junk
        except InvalidQueryInput:
            await self._post(channel, thread, replies.invalid_event_id(typed, verb))
            return
        await self._post(channel, thread, replies.looking_up(event_id))
        try:
            async with self._lookups, asyncio.timeout(self.config.lookup_timeout_s):
                found = await self._lookup.find(event_id, user)
        except InvalidQueryInput:
            await self._post(channel, thread, replies.invalid_event_id(typed, verb))
            return
        except QueryError as err:
            log.warning("lookup of %s failed: %s", event_id, err)
            reason = str(err) or type(err).__name__
            await self._post(channel, thread, replies.query_failed(event_id, reason))
            return
        except TimeoutError:
            reason = f"no answer within {self.config.lookup_timeout_s:.0f} s"
            await self._post(channel, thread, replies.query_failed(event_id, reason))
            return
        if found is None:
            days = self.config.lookup_days
            await self._post(channel, thread, replies.not_found(event_id, days))
            return
        if isinstance(found, Message):  # the door on the engine stopped it
            await self._post(channel, thread, found)
            return
        story = build_story(found.record, self.rules, found.location)
        record_text = story_reply.record_json(story)
        filename = (
            story_reply.upload_filename(story) if story_reply.needs_upload(record_text) else None
        )
        reply = story_reply.event_story(
            story,
            via=found.via,
            record_text=record_text,
            attachment=filename,
            names=self.config.account_names,
        )
        await self._post(channel, thread, reply)
        if filename is not None:
            failed = await upload_record(
                self.client, channel, thread, event_id, filename, record_text
            )
            if failed is not None:
                reply = story_reply.upload_failed(event_id, failed, record_text)
                await self._post(channel, thread, reply)

    async def status_info(self) -> replies.StatusInfo:
        extra = await self._status_extra() if self._status_extra is not None else ()
        state = self._state
        return await gather_status(
            self.rules,
            state.cycles if state else None,
            state.outbox if state else None,
            state.files if state else None,
            extra,
        )

    async def _recent_alerts(
        self, limit: int, note: str | None, channel: str, thread: str | None
    ) -> None:
        if self._recent is None:
            await self._post(channel, thread, replies.recent_unavailable())
            return
        try:
            items = await acknowledged_if_slow(
                self._recent(limit),
                self._slow_ack_after_s,
                lambda: self._post(channel, thread, replies.fetching_recent(limit)),
            )
        except QueryError as err:
            log.warning("recent alerts failed: %s", err)
            reply = replies.query_failed("recent alerts", str(err) or type(err).__name__)
            await self._post(channel, thread, reply)
            return
        reply = replies.recent_reply(items, limit, source=self._recent_label, note=note)
        await self._post(channel, thread, reply)

    async def _post(self, channel: str, thread: str | None, reply: Message) -> str | None:
        return await post_in_thread(self.client, channel, thread, reply)

"""Posting a message that tells alerts, once: chat.postMessage made idempotent.

A post can fail after Slack accepted it (the answer lost to a reset, a timeout, a 5xx from a
proxy), and a blind retry — slack_sdk's own, or the next delivery round's — posts the alerts
again. So each post carries Slack message `metadata` naming the alerts it tells; it is sent by a
client that retries only what is unambiguous (429: not accepted); and after an ambiguous failure,
before posting again, the channel's recent history (or the roll-up thread's replies) is searched
for that metadata. An alert that failed in an earlier round is searched for before its first
post of this round, too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.model.alerts import Alert, dedup_key
from umbrellabot.slack.client import CONTENT_ERRORS, describe_error
from umbrellabot.slack.text import Message

log = logging.getLogger(__name__)

METADATA_TYPE = "umbrellabot_alert"
LOOK_BACK_S = 86_400.0  # how far back history is searched for an earlier post
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")
MAX_LIST_PAGES = 20

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]


class PostStopped(Exception):
    """Posting to this channel cannot go on in this round (outage, 5xx, auth, channel...)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PostRefused(Exception):
    """Slack refused this one message for its content."""


def alert_ref(alert: Alert) -> str:
    """A short, stable name of one alert (of its outbox dedup key) for message metadata."""
    return hashlib.sha256(dedup_key(alert).encode()).hexdigest()[:20]


def parent_ref(channel: str, rule_id: str, principal: str, window_start: float) -> str:
    """The name of one roll-up window's parent message."""
    text = f"rollup|{channel}|{rule_id}|{principal}|{window_start:.3f}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def without_ambiguous_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The same client retrying 429 only: any other retry of a post may post it twice."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=[
            handler
            for handler in client.retry_handlers
            if isinstance(handler, AsyncRateLimitErrorRetryHandler)
        ],
    )


class IdempotentPoster:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        retries: int = 2,
        backoff_s: float = 0.5,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = client  # history and replies: reads, safe to retry
        self._poster = without_ambiguous_retries(client)
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._clock = clock
        self._channel_ids: dict[str, str] = {}  # a configured name -> the ID Slack answered
        self.found_posted = 0  # posts not made again because Slack had them already

    async def post(
        self,
        target: str,
        message: Message,
        *,
        refs: Sequence[str],
        thread_ts: str | None = None,
        recheck: bool = False,
    ) -> tuple[str, str]:
        """(channel ID, ts) of the message telling `refs`: posted now, or found posted before
        (`recheck`: an earlier round may have posted it). Raises PostRefused, PostStopped."""
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"alerts": list(refs)}}
        since = self._clock() - LOOK_BACK_S
        attempt = -1
        while True:
            attempt += 1
            if (attempt or recheck) and refs:
                found = await self._find(target, thread_ts, refs, since)
                if found is not None:
                    self.found_posted += 1
                    return found
            try:
                response = await self._poster.chat_postMessage(
                    channel=target,
                    text=message.text,
                    blocks=message.blocks or None,
                    thread_ts=thread_ts,
                    metadata=metadata,
                    unfurl_links=False,
                    unfurl_media=False,
                    link_names=False,
                )
            except SlackApiError as err:
                reason, retry_after = describe_error(err)
                status = getattr(err.response, "status_code", None)
                data = getattr(err.response, "data", None)
                error = data.get("error") if isinstance(data, dict) else None
                if status == 200 and error in CONTENT_ERRORS:
                    raise PostRefused(reason) from None
                if status is not None and status >= 500 and attempt < self._retries:
                    await self._sleep(self._backoff_s * 2**attempt)  # maybe accepted: look first
                    continue
                raise PostStopped(reason, retry_after) from None
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as err:
                if attempt < self._retries:
                    await self._sleep(self._backoff_s * 2**attempt)
                    continue
                raise PostStopped(describe_error(err)[0]) from None
            channel = str(response.get("channel") or target)
            self._channel_ids[target] = channel
            return channel, str(response.get("ts"))

    async def _channel_id(self, target: str) -> str | None:
        """The ID of a configured channel (history wants an ID): as given, as Slack answered
        an earlier post, or looked up by name."""
        if _CHANNEL_ID.match(target):
            return target
        if target not in self._channel_ids:
            name = target.lstrip("#")
            cursor = None
            try:
                for _ in range(MAX_LIST_PAGES):
                    page = await self._reader.conversations_list(
                        types="public_channel,private_channel",
                        exclude_archived=True,
                        limit=1000,
                        cursor=cursor,
                    )
                    for channel in page.get("channels") or []:
                        if channel.get("name") == name:
                            self._channel_ids[target] = str(channel["id"])
                    cursor = (page.get("response_metadata") or {}).get("next_cursor")
                    if target in self._channel_ids or not cursor:
                        break
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as err:
                log.warning("could not look up the channel %s: %s", target, err)
        return self._channel_ids.get(target)

    async def _find(
        self, target: str, thread_ts: str | None, refs: Sequence[str], since: float
    ) -> tuple[str, str] | None:
        """An earlier message whose metadata names one of `refs`, in the channel or thread."""
        channel = await self._channel_id(target)
        if channel is None:
            return None  # no such channel: nothing can have been posted there
        try:
            if thread_ts is not None:
                response = await self._reader.conversations_replies(
                    channel=channel, ts=thread_ts, limit=200, include_all_metadata=True
                )
            else:
                response = await self._reader.conversations_history(
                    channel=channel, oldest=f"{since:.6f}", limit=200, include_all_metadata=True
                )
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as err:
            log.warning("could not look for an earlier post in %s: %s", channel, err)
            return None
        wanted = set(refs)
        for found in response.get("messages") or []:
            metadata = found.get("metadata") or {}
            told = (metadata.get("event_payload") or {}).get("alerts") or []
            if metadata.get("event_type") == METADATA_TYPE and wanted & set(told):
                return channel, str(found.get("ts"))
        return None


class Pacer:
    """At least `interval` seconds between the end of one post and the start of the next, per
    channel (Slack allows about one message per second per channel)."""

    def __init__(self, interval: float, monotonic: Clock, sleep: Sleep) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._last: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        last = self._last.get(channel)
        if last is not None:
            delay = last + self._interval - self._monotonic()
            if delay > 0:
                await self._sleep(delay)

    def done(self, channel: str) -> None:
        self._last[channel] = self._monotonic()


def post_retries(client: AsyncWebClient) -> dict[str, Any]:
    """The client's own 5xx retries (count, backoff), which posting does itself, idempotently."""
    for handler in client.retry_handlers:
        if isinstance(handler, AsyncServerErrorRetryHandler):
            calculator = handler.interval_calculator
            backoff = getattr(calculator, "backoff_factor", 0.5)
            return {"retries": handler.max_retry_count, "backoff_s": float(backoff)}
    return {}

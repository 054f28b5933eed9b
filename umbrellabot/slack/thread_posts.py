"""The bot's two ways of answering in a thread: a message, and a file (a record too long for a
message). Every reply is as inert as an alert: each mrkdwn object `verbatim`, `link_names`
off, no unfurling. Slack trouble is logged here, since there is no one else to tell."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.slack.text import Message, verbatim

log = logging.getLogger(__name__)
T = TypeVar("T")


async def acknowledged_if_slow(
    work: Awaitable[T], after_s: float, acknowledge: Callable[[], Awaitable[object]]
) -> T:
    """The result of `work`; `acknowledge` is called first when it takes longer than
    `after_s` (a slow `recent`: "fetching…" in the thread, then the answer)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=after_s)
    if not done:
        await acknowledge()
    return await task


def api_error(err: SlackApiError) -> str:
    """Slack's `error`, or the HTTP status when the answer was no JSON (a 5xx page)."""
    data = err.response.data
    if isinstance(data, dict):
        return str(data.get("error"))
    return f"HTTP {err.response.status_code}"


async def post_in_thread(
    client: AsyncWebClient, channel: str, thread: str | None, reply: Message
) -> str | None:
    """Post in the thread; the new message's ts, or None when Slack refused it."""
    started = time.monotonic()
    try:
        response = await client.chat_postMessage(
            channel=channel,
            thread_ts=thread,
            text=reply.text,
            blocks=verbatim(list(reply.blocks)),
            unfurl_links=False,
            unfurl_media=False,
            link_names=False,
        )
    except SlackApiError as err:
        log.warning("posting to %s failed: %s", channel, api_error(err))
        return None
    except SlackClientError as err:
        log.warning("posting to %s failed: %s", channel, err)
        return None
    log.debug("posted to %s in %.3f s", channel, time.monotonic() - started)
    ts = response.get("ts")
    return str(ts) if ts else None


async def upload_record(
    client: AsyncWebClient,
    channel: str,
    thread: str | None,
    event_id: str,
    filename: str,
    text: str,
) -> str | None:
    """The record as a JSON file in the thread; None when done, else why it failed."""
    try:
        await client.files_upload_v2(
            channel=channel,
            thread_ts=thread,
            content=text,
            filename=filename,
            title=f"CloudTrail event {event_id}",
            snippet_type="json",
        )
    except (SlackApiError, SlackClientError) as err:
        reason = api_error(err) if isinstance(err, SlackApiError) else str(err)
        log.warning("uploading the record of %s failed: %s", event_id, reason)
        return reason
    return None

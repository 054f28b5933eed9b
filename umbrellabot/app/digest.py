"""Posting the daily digest (DIGEST_SCHEDULE) of yesterday's quiet matches to SLACK_CHANNEL,
once per day: a day whose digest was posted is skipped (a restart, a second run), and a post
Slack refused is tried again at the next run."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from umbrellabot.config import Settings
from umbrellabot.slack.digest import digest_message
from umbrellabot.slack.thread_posts import post_in_thread
from umbrellabot.storage.ports import StateBackend

log = logging.getLogger(__name__)


def yesterday(now: float) -> str:
    return (datetime.fromtimestamp(now, UTC).date() - timedelta(days=1)).isoformat()


async def post_digest(
    settings: Settings, state: StateBackend, client: AsyncWebClient, now: float | None = None
) -> bool:
    """The digest of the day before `now`; True when it was posted by this call."""
    moment = time.time() if now is None else now
    day = yesterday(moment)
    if await asyncio.to_thread(state.digests.digest_posted, day):
        return False
    counts = await asyncio.to_thread(
        state.digests.quiet_counts, day, int(settings.digest_min_severity)
    )
    mutes = await asyncio.to_thread(state.triage.active_mutes, moment)
    message = digest_message(
        day,
        counts,
        mutes,
        min_severity=settings.digest_min_severity,
        alert_min_severity=settings.alert_min_severity,
        names=settings.account_names,
    )
    if settings.slack_channel is None:
        return False
    posted = await post_in_thread(client, settings.slack_channel, None, message)
    if posted is None:
        log.warning("the digest of %s was not posted; tried again at the next run", day)
        return False
    await asyncio.to_thread(state.digests.record_digest, day, moment)
    log.info("posted the digest of %s (%d quiet matches)", day, sum(n for _, n in counts))
    return True

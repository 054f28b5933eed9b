"""The wiring of scaling out, beside `wiring.py`: the notification queue and its dead-letter
queue (INGEST_MODE=sqs), opened with the trail's region and role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from umbrellabot.app.wiring import aws_region, trail_role
from umbrellabot.config import Settings
from umbrellabot.model.notifications import notification_for
from umbrellabot.storage.ports import WorkQueue


@asynccontextmanager
async def open_queues(settings: Settings) -> AsyncIterator[tuple[WorkQueue, WorkQueue | None]]:
    """SQS_QUEUE_URL, and SQS_DEAD_LETTER_URL when set."""
    from umbrellabot.storage.sqs import open_queue

    assert settings.sqs_queue_url is not None
    region, role = aws_region(settings), trail_role(settings)
    async with AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                open_queue(
                    url,
                    region=region,
                    max_attempts=settings.s3_max_attempts,
                    role=role,
                    setting=setting,
                )
            )
            for url, setting in (
                (settings.sqs_queue_url, "SQS_QUEUE_URL"),
                (settings.sqs_dead_letter_url, "SQS_DEAD_LETTER_URL"),
            )
            if url
        ]
        yield opened[0], (opened[1] if len(opened) > 1 else None)


async def announce_again(settings: Settings, keys: Sequence[str]) -> None:
    """Put `keys` back on SQS_QUEUE_URL, as S3 would announce them: `retry` in sqs mode."""
    bucket = settings.cloudtrail_bucket_name
    assert bucket is not None
    async with open_queues(settings) as (queue, _):
        for key in keys:
            await queue.send(notification_for(bucket, key), {"umbrellabot-reason": "retry"})

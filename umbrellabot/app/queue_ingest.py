"""`INGEST_MODE=sqs`: the files S3 announces through the queue, instead of listing for them.

Long polls (20 s, 10 messages); each announced log file goes through the same lease and the
same `FileWork` as a listed one. A message is deleted only once every file it announces is
committed (or was done already, or is given up on), and kept invisible while they are worked
on. A file that failed waits in the queue until its retry time; after MAX_FILE_ATTEMPTS (counted
in the ledger, so transient errors and dead workers do not count) its message goes to
SQS_DEAD_LETTER_URL and is deleted. What a message announces outside the trail (the processed
and Athena-results prefixes, another bucket, digests, folder markers) is acknowledged and
skipped: a notification on the whole bucket must not loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final, Literal

from umbrellabot.app.ingest import FileDone, Ingestor
from umbrellabot.config import Settings
from umbrellabot.model.layout import is_event_log_key, normalize_prefix, region_folder_of
from umbrellabot.model.notifications import Announced, NotificationError, announced_objects
from umbrellabot.model.report import CycleReport
from umbrellabot.storage.ports import ObjectInfo, QueueMessage, S3Refused, WorkQueue
from umbrellabot.storage.sqs import QueueError

log = logging.getLogger(__name__)

WAIT_S: Final = 20  # SQS's longest poll: an idle worker makes 3 requests a minute
BATCH: Final = 10
REFUSED_RETRY_S: Final = 900  # S3 or KMS refused the key: ask again in a quarter of an hour
BUSY_RETRY_S: Final = 60  # another process holds the file's lease
RELEASE_EVERY_S: Final = 30.0  # how often the leases of this host's dead processes are freed
STALE_POLL_S: Final = 300.0  # a consumer that has not polled for this long is not ready
Outcome = Literal["done", "retry", "abandoned", "busy"]


class QueueIngest:
    """Consumes the notification queue until `request_stop`; `last_poll_at` says it is alive."""

    def __init__(
        self,
        settings: Settings,
        ingestor: Ingestor,
        queue: WorkQueue,
        dead_letters: WorkQueue | None = None,
        *,
        on_batch: Callable[[], None] | None = None,
        on_enriched: Callable[[FileDone], None] | None = None,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.queue = queue
        self.dead_letters = dead_letters
        self.on_batch = on_batch
        self.on_enriched = on_enriched
        self.on_message = on_message or (lambda outcome: None)  # for the metrics
        self.report = CycleReport()  # since the start: files, records, failures
        self.last_poll_at: float | None = None
        self.error: str | None = None  # the last fatal queue error, until a poll succeeds
        self._stopping = asyncio.Event()
        self._lanes = asyncio.Semaphore(settings.s3_concurrency)
        self._number = 0
        self._seen: list[ObjectInfo] = []  # committed since the last silence check
        self._released_at = 0.0
        self._prefix = normalize_prefix(settings.cloudtrail_initial_prefix)
        self._excluded = tuple(
            normalize_prefix(prefix)
            for prefix in (settings.cloudtrail_processed_prefix, settings.athena_results_prefix)
            if normalize_prefix(prefix)
        )

    def problem(self) -> str | None:
        """For /readyz: the queue not polled for a while (or never)."""
        if self.error is not None:
            return self.error
        if self.last_poll_at is None or time.time() - self.last_poll_at < STALE_POLL_S:
            return None
        return f"{self.queue.location()} not polled for {time.time() - self.last_poll_at:.0f} s"

    def drain_seen(self) -> list[ObjectInfo]:
        """The log files committed since the last call, as of their arrival: what the silence
        check (LOG_SILENCE_HOURS) reads instead of a listing."""
        seen, self._seen = self._seen, []
        return seen

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Poll until stopped; raises QueueError when the queue cannot be used at all."""
        failures = 0
        while not self._stopping.is_set():
            try:
                messages = await self.queue.receive(BATCH, WAIT_S, self.settings.sqs_visibility_s)
            except QueueError as err:
                if err.fatal:
                    raise
                failures += 1
                log.warning("%s; polling again", err)
                await self._pause(min(2.0**failures, 60.0))
                continue
            failures, self.error = 0, None
            self.last_poll_at = time.time()
            if self.last_poll_at - self._released_at > RELEASE_EVERY_S:
                self._released_at = self.last_poll_at  # a killed process's files, at once
                try:
                    await self.ingestor.in_db(self.ingestor.release_the_gone)
                except Exception:  # the state is busy: next time
                    log.debug("could not release the leases of gone processes", exc_info=True)
            if messages:
                await asyncio.gather(*(self._handle(message) for message in messages))
                if self.on_batch:
                    self.on_batch()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- one message ---------------------------------------------------------------------

    async def _handle(self, message: QueueMessage) -> None:
        try:
            announced = announced_objects(message.body)
        except NotificationError as err:
            await self._unreadable(message, str(err))
            return
        wanted = [item for item in announced if self._wanted(item)]
        keeping = asyncio.create_task(self._keep_hidden(message))
        try:
            outcomes = [await self._one_file(item) for item in wanted]
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)
        try:
            await self._settle(message, wanted, outcomes)
        except QueueError as err:  # the message comes back and finds its files done
            log.warning("%s", err)

    async def _settle(
        self, message: QueueMessage, files: list[Announced], outcomes: list[Outcome]
    ) -> None:
        waiting = [o for o in outcomes if o in ("retry", "busy")]
        if waiting:  # back when the earliest file is due again
            delay = await self._retry_delay(files, outcomes)
            await self.queue.hide(message, delay)
            self.on_message("retried")
            return
        abandoned = [f.key for f, o in zip(files, outcomes, strict=True) if o == "abandoned"]
        if abandoned and self.dead_letters is not None:
            reason = {"umbrellabot-reason": "MAX_FILE_ATTEMPTS"}
            await self.dead_letters.send(
                message.body, {**reason, "umbrellabot-keys": ",".join(abandoned)}
            )
            log.error(
                "gave up on %s after MAX_FILE_ATTEMPTS; its message is in %s (umbrellabot retry"
                " KEY does it again)",
                ", ".join(abandoned),
                self.dead_letters.location(),
            )
        elif abandoned:  # the queue's redrive policy takes it after maxReceiveCount
            log.error("gave up on %s after MAX_FILE_ATTEMPTS", ", ".join(abandoned))
            self.on_message("redrive")
            return
        await self.queue.delete(message)
        self.on_message("dead_lettered" if abandoned else "deleted")

    async def _retry_delay(self, files: list[Announced], outcomes: list[Outcome]) -> int:
        if "busy" in outcomes:
            return BUSY_RETRY_S
        keys = [f.key for f, o in zip(files, outcomes, strict=True) if o == "retry"]
        states = await self.ingestor.in_db(self.ingestor.files.file_states, keys)
        due = [s.next_retry_at for s in states.values() if s.next_retry_at is not None]
        wait = (min(due) - time.time()) if due else REFUSED_RETRY_S
        return int(min(max(wait, 0.0), 43200.0))  # SQS hides a message 12 hours at most

    async def _unreadable(self, message: QueueMessage, reason: str) -> None:
        """Not an S3 notification: to the dead-letter queue when there is one, else left to
        the redrive policy. Never silently dropped."""
        log.error("message %s on %s is unreadable: %s", message.id, self.queue.location(), reason)
        self.on_message("unreadable")
        if self.dead_letters is None:
            return
        try:
            await self.dead_letters.send(message.body, {"umbrellabot-reason": reason[:200]})
            await self.queue.delete(message)
        except QueueError as err:
            log.warning("%s", err)

    def _wanted(self, item: Announced) -> bool:
        """Whether the announced object is a trail log file this process reads."""
        reason = self._skip_reason(item)
        if reason is not None:
            log.debug("skipped s3://%s/%s: %s", item.bucket, item.key, reason)
        return reason is None

    def _skip_reason(self, item: Announced) -> str | None:
        key = item.key
        if item.bucket != self.settings.cloudtrail_bucket_name:
            return "another bucket than CLOUDTRAIL_BUCKET_NAME"
        if key.startswith(self._excluded):
            return "an enriched copy or an Athena result"
        if not key.startswith(self._prefix):
            return "outside CLOUDTRAIL_INITIAL_PREFIX"
        if not is_event_log_key(key) or region_folder_of(key) is None:
            return "not a CloudTrail log file (a digest, a folder marker, another file)"
        return None

    # -- one file ------------------------------------------------------------------------

    async def _one_file(self, announced: Announced) -> Outcome:
        item = ObjectInfo(announced.key, announced.etag, announced.size or 0, time.time())
        async with self._lanes:
            self._number += 1
            number = self._number
            work_dir = self.ingestor.work_dir
            work_dir.mkdir(parents=True, exist_ok=True)
            try:
                async with self.ingestor.lease(item) as mine:
                    if not mine:  # another process has it, or it needs no work now
                        return await self._state_of(item.key, busy=True)
                    await self.ingestor.work.process(
                        item,
                        work_dir / f"q{number}.in",
                        work_dir / f"q{number}.out",
                        self.report,
                        self.on_enriched,
                    )
            except S3Refused as refusal:
                log.error("%s; the file waits", refusal)
                return "retry"
        outcome = await self._state_of(item.key)
        if outcome == "done":
            self._seen.append(item)
        return outcome

    async def _state_of(self, key: str, *, busy: bool = False) -> Outcome:
        known = (await self.ingestor.in_db(self.ingestor.files.file_states, [key])).get(key)
        if known is not None and known.status == "done":
            return "done"
        if known is not None and known.status == "abandoned":
            return "abandoned"
        if known is not None and known.status == "failed":
            return "retry"
        return "busy" if busy else "retry"

    async def _keep_hidden(self, message: QueueMessage) -> None:
        hidden = self.settings.sqs_visibility_s
        while True:
            await asyncio.sleep(hidden / 3)
            try:
                await self.queue.hide(message, hidden)
            except QueueError as err:
                log.warning("%s", err)

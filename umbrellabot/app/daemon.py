"""`umbrellabot run`: the daemon. An APScheduler job (one cycle: ingest, detections, delivery)
beside the Bolt Socket Mode bot and the health server, in one asyncio event loop; SIGTERM and
SIGINT stop it cleanly (files in flight finish within a budget), a second signal at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from functools import partial
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from rich.console import Console

from umbrellabot.app import athena_tables, schedule, wiring, wiring_scale
from umbrellabot.app.cycle import count_file, cycle
from umbrellabot.app.delivery import DeliveryLoop
from umbrellabot.app.digest import post_digest
from umbrellabot.app.duties import Duty
from umbrellabot.app.health import Readiness, health_app, start_health_server
from umbrellabot.app.projection import ProjectionWatch
from umbrellabot.app.queue_ingest import QueueIngest
from umbrellabot.app.services import Services, services
from umbrellabot.config import Settings
from umbrellabot.errors import UsageError
from umbrellabot.query.queries import QueryError
from umbrellabot.slack.bot import SlackBotError
from umbrellabot.slack.client import slack_client
from umbrellabot.slack.recent import recent_from_outbox
from umbrellabot.storage.dynamodb.table import StateError
from umbrellabot.storage.s3 import S3AccessError, S3TransientError
from umbrellabot.storage.sqs import QueueError

log = logging.getLogger(__name__)
QUEUE_RETRY_S = 60.0  # after the queue refused (no such queue, access denied)


def _kill_workers() -> None:
    """Stop the enrichment worker processes now (their work is done again next time)."""
    for child in multiprocessing.active_children():
        child.kill()


class Daemon:
    """`umbrellabot run`: the scheduler, the bot and the health server in one loop."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.stopping = asyncio.Event()
        self._signals = 0
        self._cycle: asyncio.Task[Any] | None = None
        self._one_cycle = asyncio.Lock()
        self._consumer: QueueIngest | None = None  # INGEST_MODE=sqs
        self._consuming: asyncio.Task[None] | None = None
        self._duty: Duty | None = None  # the scheduled work's lease, when the state is shared
        self._delivery: DeliveryLoop | None = None
        self._projection = ProjectionWatch(
            partial(athena_tables.update_projection, settings)
            if settings.athena_setup_on_start
            else None
        )

    def _on_signal(self, number: int) -> None:
        self._signals += 1
        if self._signals > 1:  # a second signal: leave at once
            log.warning("second %s: exiting now", signal.Signals(number).name)
            _kill_workers()  # else they are left behind, orphans
            os._exit(128 + number)
        log.info("%s: finishing the files in flight, then exiting", signal.Signals(number).name)
        self.stopping.set()

    async def _job(self, svc: Services, readiness: Readiness, ingest: bool = True) -> None:
        sweep = ingest and self._consumer is not None  # the reconciliation sweep: once-work
        if sweep and self._duty is not None and not self._duty.held:
            return
        async with self._one_cycle:  # the cycle and the reconciliation sweep: one at a time
            await self._run_cycle(svc, readiness, ingest)

    async def _run_cycle(self, svc: Services, readiness: Readiness, ingest: bool) -> None:
        self._cycle = asyncio.current_task()
        try:
            announced = None if ingest or not self._consumer else self._consumer.drain_seen()
            once = self._duty is None or self._duty.held
            outcome = await cycle(svc, deliver=False, ingest=ingest, announced=announced, once=once)
        except (S3AccessError, S3TransientError, QueryError, UsageError, StateError) as err:
            # AWS refusing or not answering: one line naming the operation, no traceback
            readiness.last_error = str(err)
            component = _component_of(err)
            svc.metrics.errors.labels(component=component).inc()
            log.error("cycle failed: %s", err)
        except asyncio.CancelledError:  # by _finish, past the budget: not an error of the job
            log.warning("cycle abandoned at shutdown; unfinished files are done next time")
        except Exception as err:
            readiness.last_error = f"{type(err).__name__}: {err}"
            log.exception("cycle failed")
        else:
            readiness.last_success_at, readiness.last_error = time.time(), None
            if self.settings.uses_athena() and self.settings.cloudtrail_bucket_name and once:
                await self._projection.after_cycle(svc.ingestor.regions_found)
            report = outcome.report
            log.info(
                "cycle done: %d files, %d records, %d new alerts, %d failed",
                report.files,
                report.records,
                report.new_alerts + outcome.detection_alerts,
                len(report.failed) + len(report.abandoned),
            )
        finally:
            self._cycle = None
            if self._delivery is not None:
                self._delivery.wake()
            await self._refresh_abandoned(svc, readiness)

    async def _digest(self, svc: Services) -> None:
        if self._duty is not None and not self._duty.held:
            return  # another process posts it
        settings = self.settings
        assert settings.slack_bot_token is not None
        client = slack_client(
            settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        try:
            await post_digest(settings, svc.state, client)
        except Exception:  # the digest must never stop the daemon
            log.exception("the daily digest failed")

    async def _refresh_abandoned(self, svc: Services, readiness: Readiness) -> None:
        """The files given up on within STATE_RETENTION_DAYS, for /readyz."""
        since = time.time() - self.settings.state_retention_days * 86400
        try:
            files = await asyncio.to_thread(svc.state.files.abandoned_files, since)
        except Exception:  # the state is busy or gone: keep what was known
            log.debug("could not read the abandoned files", exc_info=True)
            return
        readiness.abandoned = [(state.key, state.reason or "") for state in files]

    async def run(self) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        settings = self.settings
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self._on_signal, number)
        async with services(settings, self.console) as svc, AsyncExitStack() as stack:
            readiness = Readiness(
                max_cycle_age_s=schedule.cycle_age_limit_s(settings),
                slack_enabled=settings.slack_app_token is not None,
                checks=[svc.ingestor.pool.problem],
            )
            self._duty = Duty(svc.state.cycles, svc.owner, settings.scheduled_work_lease_s)
            await self._duty.renew(starting=True)
            keeping = asyncio.create_task(self._duty.keep(self.stopping))
            await self._setup_athena(svc)
            if settings.health_port:
                server = await start_health_server(
                    health_app(svc.metrics, readiness), settings.health_host, settings.health_port
                )
                stack.push_async_callback(server.cleanup)
            if settings.slack_bot_token and settings.slack_app_token:
                await self._start_bot(svc, readiness, stack)
            self._delivery = DeliveryLoop(
                svc.state.outbox,
                svc.notifier,
                svc.metrics,
                owner=svc.owner,
                triage=svc.state.triage,
                # a shared table is asked less often while there is nothing to deliver
                idle_interval_s=5.0 if settings.state_backend == "dynamodb" else 1.0,
            )
            delivering = asyncio.create_task(self._delivery.run())
            if settings.ingest_mode == "sqs":
                await self._start_consumer(svc, readiness, stack)
            # Everything wired so far lives as long as the process: out of the collector's
            # sight, full collections no longer pause the loop for tens of milliseconds.
            gc.freeze()
            scheduler = AsyncIOScheduler(timezone=UTC)
            scheduler.add_job(
                self._job,
                schedule.trigger(settings),
                args=(svc, readiness, settings.ingest_mode == "list"),
                id="cycle",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )  # and one cycle at start
            if settings.ingest_mode == "sqs" and settings.reconcile_schedule:
                scheduler.add_job(  # what a lost notification never announced
                    self._job,
                    CronTrigger.from_crontab(settings.reconcile_schedule, timezone=UTC),
                    args=(svc, readiness, True),
                    id="reconcile",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
            if settings.digest_schedule and settings.slack_enabled() and settings.slack_channel:
                scheduler.add_job(
                    self._digest,
                    CronTrigger.from_crontab(settings.digest_schedule, timezone=UTC),
                    args=(svc,),
                    id="digest",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=6 * 3600,  # a digest late by a restart is still wanted
                )
            scheduler.start()
            log.info(
                "umbrellabot running: %s, every %s%s",
                svc.where,
                settings.schedule or f"{settings.poll_interval}s",
                f"; files from {settings.sqs_queue_url}" if self._consumer else "",
            )
            await self.stopping.wait()
            # pause, not shutdown: APScheduler's shutdown cancels the running cycle at once
            scheduler.pause()
            await self._finish(svc, delivering)
            await asyncio.gather(keeping, return_exceptions=True)
            await self._duty.release()  # another process takes the scheduled work at once
            scheduler.shutdown(wait=False)
        log.info("umbrellabot stopped")
        return 0

    async def _start_consumer(
        self, svc: Services, readiness: Readiness, stack: AsyncExitStack
    ) -> None:
        """INGEST_MODE=sqs: the queue's files, in a task beside the scheduler."""
        queue, dead_letters = await stack.enter_async_context(
            wiring_scale.open_queues(svc.settings)
        )
        delivery = self._delivery
        consumer = QueueIngest(
            svc.settings,
            svc.ingestor,
            queue,
            dead_letters,
            on_batch=delivery.wake if delivery else None,
            on_enriched=partial(count_file, svc.metrics),
            on_message=lambda outcome: svc.metrics.queue_messages.labels(outcome=outcome).inc(),
        )
        readiness.checks.append(consumer.problem)
        self._consumer = consumer
        self._consuming = asyncio.create_task(self._consume(svc, consumer))

    async def _consume(self, svc: Services, consumer: QueueIngest) -> None:
        while not self.stopping.is_set():
            try:
                await consumer.run()
                return
            except QueueError as err:  # no such queue, access denied: said, tried again
                consumer.error = str(err)
                svc.metrics.errors.labels(component="sqs").inc()
                log.error("%s; trying again in %d s", err, QUEUE_RETRY_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), QUEUE_RETRY_S)

    async def _setup_athena(self, svc: Services) -> None:
        if not (self.settings.athena_setup_on_start and self.settings.uses_athena()):
            return
        if self._duty is not None and not self._duty.held:
            return  # the holder of the scheduled work keeps the tables
        try:
            for line in await athena_tables.setup_table(self.settings):
                log.info("athena setup: %s", line)
        except (QueryError, S3AccessError, UsageError) as err:
            svc.metrics.errors.labels(component="athena").inc()
            log.error("athena setup failed: %s", err)

    async def _start_bot(self, svc: Services, readiness: Readiness, stack: AsyncExitStack) -> None:
        bot = wiring.slack_bot(
            self.settings,
            locator=svc.locator(),
            rules=svc.rules,
            state=svc.state,
            account_names=svc.names,
            recent=recent_from_outbox(svc.state.outbox),
        )

        async def connected() -> bool:
            client = bot.socket_client
            up = bool(client is not None and await client.is_connected())
            svc.metrics.slack_connected.set(1 if up else 0)
            return up

        readiness.slack_connected = connected

        async def start() -> None:
            try:
                await bot.start()
            except SlackBotError as err:  # the ingest goes on; /readyz says what is wrong
                svc.metrics.errors.labels(component="slack").inc()
                log.error("Slack bot not started: %s", err)

        starting = asyncio.create_task(start())  # the scheduler does not wait for Slack

        async def stop() -> None:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await bot.stop()

        stack.push_async_callback(stop)

    async def _finish(self, svc: Services, delivering: asyncio.Task[None]) -> None:
        """Stop taking files, let the ones in flight end within the budget, deliver what can
        be delivered; whatever is cut short is complete or absent and is done next time."""
        budget = self.settings.shutdown_timeout_s
        deadline = time.monotonic() + budget * 0.6
        svc.ingestor.request_stop()
        if self._consumer is not None and self._consuming is not None:
            self._consumer.request_stop()
            try:  # the files in flight finish; their messages are deleted or come back
                await asyncio.wait_for(
                    asyncio.shield(self._consuming), max(0.0, deadline - time.monotonic())
                )
            except (TimeoutError, asyncio.CancelledError):
                self._consuming.cancel()
                await asyncio.gather(self._consuming, return_exceptions=True)
                _kill_workers()
        running = self._cycle
        if running is not None and not running.done():
            try:
                await asyncio.wait_for(
                    asyncio.shield(running), max(0.0, deadline - time.monotonic())
                )
            except (TimeoutError, asyncio.CancelledError):
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                _kill_workers()  # the file they enrich is abandoned; closing would wait for it
            except Exception:
                log.debug("the last cycle ended with an error", exc_info=True)
        assert self._delivery is not None
        await self._delivery.stop()
        try:
            # the round under way finishes, then one more for what the last files added
            await asyncio.wait_for(asyncio.shield(delivering), budget * 0.1)
            await asyncio.wait_for(self._delivery.round(), budget * 0.2)
        except (TimeoutError, Exception) as err:
            delivering.cancel()
            log.warning(
                "outbox not flushed at shutdown (%s); it is delivered next time", type(err).__name__
            )


def _component_of(err: Exception) -> str:
    if isinstance(err, StateError):
        return "state"
    return "s3" if isinstance(err, S3AccessError | S3TransientError) else "athena"

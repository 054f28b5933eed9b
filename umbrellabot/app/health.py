"""Health and metrics over HTTP (aiohttp): `/healthz`, `/readyz`, `/metrics` (Prometheus).

`Metrics` is one registry per daemon (prometheus_client, the standard exposition format);
`Readiness` holds what `/readyz` judges: Slack connected (when Slack is on) and a successful
cycle recently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from umbrellabot import __version__
from umbrellabot.errors import UsageError


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.files = Counter("umbrellabot_files_processed", "Log files enriched", registry=r)
        self.records = Counter("umbrellabot_records", "CloudTrail records enriched", registry=r)
        self.alerts = Counter(
            "umbrellabot_alerts", "Rule matches by severity (enrichment)", ["severity"], registry=r
        )
        self.new_alerts = Counter(
            "umbrellabot_new_alerts",
            "Alerts added to the outbox (rules and detections)",
            registry=r,
        )
        self.delivered = Counter("umbrellabot_alerts_delivered", "Alerts delivered", registry=r)
        self.file_failures = Counter(
            "umbrellabot_file_failures", "Failed attempts at log files", registry=r
        )
        self.files_abandoned = Counter(
            "umbrellabot_files_abandoned", "Log files given up on", registry=r
        )
        self.worker_restarts = Counter(
            "umbrellabot_worker_pool_restarts",
            "Enrichment pools replaced because a worker process died",
            registry=r,
        )
        self.s3_retries = Counter(
            "umbrellabot_s3_retries",
            "S3 attempts that failed transiently (throttled, 5xx, connection) and were retried",
            registry=r,
        )
        self.s3_throttles = Counter(
            "umbrellabot_s3_throttles", "S3 attempts throttled (SlowDown, 503)", registry=r
        )
        self.cycles = Counter("umbrellabot_cycles", "Ingest cycles", ["outcome"], registry=r)
        self.queue_messages = Counter(
            "umbrellabot_queue_messages",
            "Queue messages (INGEST_MODE=sqs) by outcome: deleted, retried, dead_lettered,"
            " redrive (given up on, no SQS_DEAD_LETTER_URL), unreadable",
            ["outcome"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "umbrellabot_cycle_duration_seconds",
            "Ingest cycle duration",
            registry=r,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
        )
        self.outbox_depth = Gauge("umbrellabot_outbox_depth", "Alerts waiting", registry=r)
        self.errors = Counter(
            "umbrellabot_errors", "Errors by component", ["component"], registry=r
        )
        self.last_success = Gauge(
            "umbrellabot_last_cycle_success_timestamp_seconds",
            "When the last cycle succeeded",
            registry=r,
        )
        self.slack_connected = Gauge(
            "umbrellabot_slack_connected", "1 when the Socket Mode connection is up", registry=r
        )
        info = Gauge("umbrellabot_info", "Version", ["version"], registry=r)
        info.labels(version=__version__).set(1)
        for component in ("s3", "athena", "slack", "detections"):
            self.errors.labels(component=component)  # present (at 0) from the start

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Readiness:
    max_cycle_age_s: float
    slack_enabled: bool
    slack_connected: Callable[[], Awaitable[bool]] | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)
    # more reasons not to be ready, each None when all is well (the worker pool...)
    checks: list[Callable[[], str | None]] = field(default_factory=list)
    abandoned: list[tuple[str, str]] = field(default_factory=list)  # (key, reason), refreshed

    async def problems(self) -> list[str]:
        found = []
        if self.slack_enabled:
            connected = await self.slack_connected() if self.slack_connected else False
            if not connected:
                found.append("Slack Socket Mode is not connected")
        if self.last_success_at is None:
            found.append(
                "no ingest cycle has succeeded yet"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            )
        elif time.time() - self.last_success_at > self.max_cycle_age_s:
            found.append(
                f"the last successful cycle is older than {self.max_cycle_age_s:.0f}s"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            )
        found.extend(problem for check in self.checks if (problem := check()))
        if self.abandoned:
            shown = "; ".join(f"{key}: {reason}" for key, reason in self.abandoned[:5])
            more = f" and {len(self.abandoned) - 5} more" if len(self.abandoned) > 5 else ""
            found.append(
                f"{len(self.abandoned)} log files were given up on (umbrellabot retry KEY or"
                f" --all when the cause is fixed): {shown}{more}"
            )
        return found


def health_app(metrics: Metrics, readiness: Readiness) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "version": __version__})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.problems()
        status = 503 if problems else 200
        return web.json_response({"ready": not problems, "problems": problems}, status=status)

    async def metrics_page(_: web.Request) -> web.Response:
        if readiness.slack_enabled:  # as it is now, not as the last /readyz found it
            up = readiness.slack_connected is not None and await readiness.slack_connected()
            metrics.slack_connected.set(1 if up else 0)
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


async def start_health_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Raises UsageError (one line) when the address cannot be listened on (in use, unknown
    host)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as err:
        await runner.cleanup()
        code = err.errno  # a resolver's codes are negative
        reason = os.strerror(code) if code is not None and code > 0 else str(err)
        raise UsageError(
            f"HEALTH_PORT: cannot listen on {host}:{port}: {reason}"
            " (choose another HEALTH_PORT or HEALTH_HOST, or HEALTH_PORT=0 for none)"
        ) from None
    return runner

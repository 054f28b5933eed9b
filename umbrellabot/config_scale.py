"""The settings of scaling out (`config.Settings` inherits them): where the work comes from.

`INGEST_MODE=list` (the default) lists the trail's folders every cycle; `INGEST_MODE=sqs` takes
the files S3 announces through `SQS_QUEUE_URL` and lists only for the reconciliation sweep
(`RECONCILE_SCHEDULE`), which finds what a lost notification never announced.
`STATE_BACKEND=dynamodb` keeps the state in `DYNAMODB_TABLE`, shared by workers on any host.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_QUEUE_URL = re.compile(r"^https?://[^\s/]+(:\d+)?/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")


class ScaleOutSettings(BaseSettings):
    ingest_mode: Literal["list", "sqs"] = Field(
        "list", description="list: list the trail's folders each cycle; sqs: S3 notifications."
    )
    sqs_queue_url: str | None = Field(
        None, description="The queue S3 (or SNS, or EventBridge) sends the notifications to."
    )
    sqs_dead_letter_url: str | None = Field(
        None,
        description="Where a file's message goes after MAX_FILE_ATTEMPTS (and unreadable"
        " messages); unset: left to the queue's redrive policy.",
    )
    sqs_visibility_s: int = Field(
        300, ge=30, le=43200, description="Seconds a received message stays hidden, renewed."
    )
    scheduled_work_lease_s: float = Field(
        90.0,
        ge=3,
        le=3600,
        description="Processes on one state: how soon another takes over the detections,"
        " digest and silence check when their holder dies.",
    )
    reconcile_schedule: str | None = Field(
        "17 3 * * *",
        description="In sqs mode, when the listing sweep runs (cron, UTC); empty: never.",
    )

    state_backend: Literal["sqlite", "dynamodb"] = Field(
        "sqlite",
        description="sqlite: one file in STATE_DIR (processes of one host); dynamodb:"
        " DYNAMODB_TABLE, shared by workers on any number of hosts.",
    )
    dynamodb_table: str | None = Field(
        None, description="STATE_BACKEND=dynamodb: the table (`umbrellabot state setup`)."
    )
    index_events: Literal["alerts", "all"] = Field(
        "alerts",
        description="STATE_BACKEND=dynamodb: the eventIDs `check out` finds without the query"
        " engine: alerts (the alerted events) or all (every event; costs a write each).",
    )

    @field_validator("dynamodb_table")
    @classmethod
    def _check_table(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _TABLE_NAME.match(value.strip()):
            raise ValueError("expected a DynamoDB table name: 3-255 of A-Z a-z 0-9 _ . -")
        return value.strip()

    @field_validator("sqs_queue_url", "sqs_dead_letter_url")
    @classmethod
    def _check_queue_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _QUEUE_URL.match(value.strip()):
            raise ValueError(
                "expected a queue URL such as"
                " https://sqs.us-east-1.amazonaws.com/111122223333/cloudtrail-files"
            )
        return value.strip()

    @field_validator("reconcile_schedule")
    @classmethod
    def _check_reconcile(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value.strip(), timezone="UTC")
        except ValueError as err:
            raise ValueError(f"expected a cron expression such as '17 3 * * *': {err}") from None
        return value.strip()

    def check_scale_out(self) -> str | None:
        """What is missing for INGEST_MODE or STATE_BACKEND, as a sentence; None when
        nothing is."""
        if self.ingest_mode == "sqs" and self.sqs_queue_url is None:
            return "INGEST_MODE=sqs needs SQS_QUEUE_URL (the queue S3 notifies)"
        if self.state_backend == "dynamodb" and self.dynamodb_table is None:
            return "STATE_BACKEND=dynamodb needs DYNAMODB_TABLE (made by `umbrellabot state setup`)"
        return None

"""After a downtime longer than LOOKBACK_DAYS: every file delivered meanwhile is found (through
MAX_CATCHUP_DAYS), the rest is named as a backfill, and the detections cover the missed
windows. The downtime is the state's last listing moved back, as a stopped VM leaves it."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, create_user, days_ago, log_key, record
from s3_helpers import all_keys, put

from umbrellabot.app import services
from umbrellabot.app.cycle import missed_windows
from umbrellabot.config import Settings
from umbrellabot.model.report import CycleReport
from umbrellabot.query.detections import LATE_EVENTS


def settings_for(bucket: str, tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        cloudtrail_bucket_name=bucket,
        state_dir=tmp_path / "state",
        enrich_workers=0,
        lookback_days=2,
        max_catchup_days=14,
        allowed_countries=["US"],
    )


async def cycle(settings: Settings) -> CycleReport:
    async with services.ingestor(settings) as runner:
        return await runner.run_cycle()


def last_listed(settings: Settings, days: int) -> None:
    """The state as a process that stopped `days` days ago left it."""
    with sqlite3.connect(settings.state_dir / "umbrellabot.sqlite3") as db:
        db.execute("UPDATE listings SET through = ?", (f"{days_ago(days)}",))


async def test_files_of_a_week_down_are_found_and_older_ones_named(
    s3: Any, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(bucket, tmp_path)
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", days_ago(0), "before"), [record()])
    assert (await cycle(settings)).files == 1
    last_listed(settings, 6)  # down for six days: LOOKBACK_DAYS=2 alone would miss days 2..5
    missed = [log_key(ACCOUNT_A, "us-east-1", days_ago(n), f"down-{n}") for n in (2, 3, 5)]
    for key in missed:
        put(s3, bucket, key, [create_user()])
    report = await cycle(settings)
    assert report.files == 3 and report.new_alerts == 3
    assert set(all_keys(s3, bucket, "processed/")) >= {f"processed/{key}" for key in missed}
    assert (await cycle(settings)).files == 0  # and the listing caught up: nothing twice

    last_listed(settings, 20)  # beyond MAX_CATCHUP_DAYS=14
    older = log_key(ACCOUNT_A, "us-east-1", days_ago(17), "older")
    inside = log_key(ACCOUNT_A, "us-east-1", days_ago(10), "inside")
    put(s3, bucket, older, [record()])
    put(s3, bucket, inside, [record()])
    with caplog.at_level(logging.WARNING):
        report = await cycle(settings)
    assert report.files == 1 and f"processed/{inside}" in all_keys(s3, bucket, "processed/")
    [warning] = [r.getMessage() for r in caplog.records if "MAX_CATCHUP_DAYS" in r.getMessage()]
    assert f"{ACCOUNT_A}/us-east-1 since {days_ago(20)}" in warning
    assert f"umbrellabot backfill --since {days_ago(20)} --until {days_ago(14)}" in warning


def test_detections_evaluate_the_windows_a_downtime_missed() -> None:
    now = time.time()
    assert missed_windows(None, now, 14) == LATE_EVENTS
    assert missed_windows(now - 300, now, 14) == timedelta(seconds=300) + LATE_EVENTS
    assert missed_windows(now - 3 * 86400, now, 14) == timedelta(days=3) + LATE_EVENTS
    assert missed_windows(now - 30 * 86400, now, 14) == timedelta(days=14)

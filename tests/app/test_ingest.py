"""Ingest from S3 through aioboto3 against moto's server (no mocking of aioboto3/botocore)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders import (
    ACCOUNT_A,
    ACCOUNT_B,
    create_user,
    days_ago,
    insight_record,
    log_key,
    record,
    today,
)
from s3_helpers import all_keys, enriched, put

from umbrellabot.app import services
from umbrellabot.config import Settings
from umbrellabot.model.layout import LayoutError
from umbrellabot.model.report import CycleReport
from umbrellabot.storage.s3 import S3AccessError
from umbrellabot.storage.sqlite import SqliteState


def settings_for(bucket: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cloudtrail_bucket_name": bucket,
        "state_dir": tmp_path / "state",
        "enrich_workers": 0,
        "retry_base_delay_s": 0,
        "allowed_countries": ["US"],
    }
    values.update(overrides)
    return Settings(**values)


async def cycle(settings: Settings) -> CycleReport:
    async with services.ingestor(settings) as runner:
        return await runner.run_cycle()


def outbox(settings: Settings) -> list[tuple[str, str]]:
    store = SqliteState(settings.state_dir)
    try:
        rows = store.database.execute("SELECT event_id, rule_id FROM outbox ORDER BY id").fetchall()
    finally:
        store.close()
    return [(str(a), str(b)) for a, b in rows]


async def test_single_account_regions_window_digest_insight(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    new_today = log_key(ACCOUNT_A, "us-east-1", today(), "a")
    new_yesterday = log_key(ACCOUNT_A, "eu-west-1", days_ago(1), "b")
    too_old = log_key(ACCOUNT_A, "us-east-1", days_ago(5), "old")
    put(s3, bucket, new_today, [create_user("e-1"), record()])
    put(s3, bucket, new_yesterday, [record(ip="81.2.69.142", event_id="e-2")])
    put(s3, bucket, too_old, [create_user()])
    digest = (
        f"AWSLogs/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/{today():%Y/%m/%d}/"
        f"{ACCOUNT_A}_CloudTrail-Digest_us-east-1_trail_us-east-1_x.json.gz"
    )
    put(s3, bucket, digest, b'{"digest": true}')
    insight = (
        f"AWSLogs/{ACCOUNT_A}/CloudTrail-Insight/us-east-1/{today():%Y/%m/%d}/"
        f"{ACCOUNT_A}_CloudTrail-Insight_us-east-1_{today():%Y%m%d}T1000Z_i.json.gz"
    )
    # An Insight's start (alerted by the pack's Insight rule) and its end (not alerted).
    put(s3, bucket, insight, [insight_record(event_id="i-1"), insight_record("End")])
    settings = settings_for(bucket, tmp_path)

    async with services.ingestor(settings) as runner:
        report = await runner.run_cycle()
        silence_listing = [item.key for item in runner.window_listing]
    assert (report.regions, report.insight_regions) == (2, 1)
    assert (report.listed, report.files, report.records) == (3, 3, 5)
    assert report.new_alerts == 3  # counted across concurrent lanes
    assert insight not in silence_listing and new_today in silence_listing
    assert all_keys(s3, bucket, "processed/") == sorted(
        [f"processed/{new_today}", f"processed/{new_yesterday}", f"processed/{insight}"]
    )
    start, end = enriched(s3, bucket, f"processed/{insight}")
    assert start["xrules"] == ["cloudtrail-insight-started"] and start["xpriority"] == "HIGH"
    assert "xrules" not in end
    lines = enriched(s3, bucket, f"processed/{new_today}")
    assert lines[0]["xrules"] == ["iam-user-created"] and lines[0]["xpriority"] == "HIGH"
    assert "xrules" not in lines[1]
    assert enriched(s3, bucket, f"processed/{new_yesterday}")[0]["xcountry_code"] == "GB"
    assert sorted(outbox(settings)) == [
        ("e-1", "iam-user-created"),
        ("e-2", "api-call-from-disallowed-country"),
        ("i-1", "cloudtrail-insight-started"),
    ]
    store = SqliteState(settings.state_dir)
    indexed = store.events.find_event("e-1")
    store.close()
    assert indexed is not None and indexed.key == f"processed/{new_today}"
    assert indexed.priority == "HIGH"

    again = await cycle(settings)
    assert again.files == 0 and again.listed == 3
    assert "GetObject" not in again.requests and "PutObject" not in again.requests


async def test_organization_trail_and_prefixes(s3: Any, bucket: str, tmp_path: Path) -> None:
    org = "o-abcd123456"
    keys = [
        log_key(ACCOUNT_A, "us-east-1", today(), "a", prefix="custom/", org=org),
        log_key(ACCOUNT_B, "us-east-1", today(), "b", prefix="custom/", org=org),
        log_key(ACCOUNT_B, "ap-southeast-2", days_ago(1), "c", prefix="custom/", org=org),
    ]
    for key in keys:
        put(s3, bucket, key, [record()])
    # the bucket root: the custom prefix and the org are found without configuration,
    # and our own output prefix is never taken for a trail
    report = await cycle(settings_for(bucket, tmp_path / "root"))
    assert (report.regions, report.files) == (3, 3)
    again = await cycle(settings_for(bucket, tmp_path / "root"))
    assert (again.regions, again.files) == (3, 0)
    # pointing at one account's CloudTrail folder, as the original system did
    one = settings_for(
        bucket,
        tmp_path / "one",
        cloudtrail_initial_prefix=f"custom/AWSLogs/{org}/{ACCOUNT_B}/CloudTrail/",
    )
    report = await cycle(one)
    assert (report.regions, report.files) == (2, 2)
    at_org = settings_for(
        bucket, tmp_path / "org", cloudtrail_initial_prefix=f"custom/AWSLogs/{org}"
    )
    assert (await cycle(at_org)).files == 3


async def test_a_late_file_is_picked_up(s3: Any, bucket: str, tmp_path: Path) -> None:
    settings = settings_for(bucket, tmp_path)
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", today(), "first"), [record()])
    assert (await cycle(settings)).files == 1
    late = log_key(ACCOUNT_A, "us-east-1", days_ago(1), "late")  # for an earlier time
    put(s3, bucket, late, [create_user("late-1")])
    report = await cycle(settings)
    assert report.files == 1
    assert outbox(settings) == [("late-1", "iam-user-created")]


async def test_poison_file_bounded_retries(s3: Any, bucket: str, tmp_path: Path) -> None:
    settings = settings_for(bucket, tmp_path, max_file_attempts=3)
    poison = log_key(ACCOUNT_A, "us-east-1", today(), "poison")
    good = log_key(ACCOUNT_A, "us-east-1", today(), "good")
    put(s3, bucket, poison, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 20)
    put(s3, bucket, good, [record()])
    first = await cycle(settings)
    assert first.files == 1
    assert first.failed == [(poison, "corrupt gzip: invalid deflate block found")]
    assert (await cycle(settings)).failed[0][0] == poison
    third = await cycle(settings)
    assert [key for key, _ in third.abandoned] == [poison]
    fourth = await cycle(settings)
    assert fourth.failed == [] and fourth.abandoned == [] and "GetObject" not in fourth.requests
    assert f"processed/{poison}" not in all_keys(s3, bucket, "processed/")


async def test_retry_waits_for_its_delay(s3: Any, bucket: str, tmp_path: Path) -> None:
    settings = settings_for(bucket, tmp_path, retry_base_delay_s=3600)
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", today(), "bad"), b"not a log at all")
    assert len((await cycle(settings)).failed) == 1
    report = await cycle(settings)
    assert report.failed == [] and report.waiting == 1 and "GetObject" not in report.requests


async def test_missing_bucket(aws_env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(S3AccessError, match="bucket 'no-such-trail-bucket' does not exist"):
        await cycle(settings_for("no-such-trail-bucket", tmp_path))


async def test_prefix_inside_a_day_folder_is_a_settings_error(bucket: str, tmp_path: Path) -> None:
    inside = f"AWSLogs/{ACCOUNT_A}/CloudTrail/us-east-1/2026/"
    with pytest.raises(LayoutError, match="inside a region"):
        await cycle(settings_for(bucket, tmp_path, cloudtrail_initial_prefix=inside))

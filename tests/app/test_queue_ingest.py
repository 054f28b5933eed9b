"""INGEST_MODE=sqs end to end: `umbrellabot run` takes the files S3 announces through SQS (moto
sends the notifications, URL-encoded keys included) and lists nothing. Every file is processed
once, every alert posted once, each message deleted after its file's commit; the enriched
copies the daemon writes into the same bucket are announced too and skipped (no loop); a file
that keeps failing and a message that is no notification go to the dead-letter queue."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import Running, clean_env, free_port, http_get, metric_samples, state_count
from fake_slack import BOT_TOKEN, FakeSlack
from sqs_helpers import make_queue, notify

pytestmark = pytest.mark.timeout(180)

ALERTS = "CALERTS01"
FILES = 6
EVENT = re.compile(r"7f3c2a10-0000-4e5b-9a61-0c1d2e3f\d{4}")


def depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(found[name]) for name in names)


def posted(fake: FakeSlack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in fake.messages_in(ALERTS):
        counts.update(set(EVENT.findall(message.text + json.dumps(message.blocks))))
    return counts


@pytest.fixture
def queues(aws_env: dict[str, str], s3: Any, bucket: str) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    url, arn = make_queue(sqs, f"{bucket}-files")
    dead, _ = make_queue(sqs, f"{bucket}-dead")
    notify(s3, bucket, arn)
    return sqs, url, dead


def env_for(
    aws_env: dict[str, str], fake: FakeSlack, bucket: str, state: Path, url: str, dead: str
) -> dict[str, str]:
    return clean_env(
        **{
            **aws_env,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "INGEST_MODE": "sqs",
            "SQS_QUEUE_URL": url,
            "SQS_DEAD_LETTER_URL": dead,
            "RECONCILE_SCHEDULE": "",  # only the queue brings files
            "MAX_FILE_ATTEMPTS": "1",
            "STATE_DIR": str(state),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_CHANNEL": ALERTS,
            "SLACK_POST_INTERVAL_S": "0",
            "SLACK_ROLLUP_THRESHOLD": "1000",
            "POLL_INTERVAL": "2",
            "HEALTH_HOST": "127.0.0.1",
            "HEALTH_PORT": str(free_port()),
            "LOG_FORMAT": "json",
            "ENRICH_WORKERS": "1",
            "DETECTIONS_ENABLED": "false",
            "ALLOWED_COUNTRIES": "US",
        }
    )


async def test_the_queue_brings_every_file_once_and_nothing_loops(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    queues: tuple[Any, str, str],
    fake: FakeSlack,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    sqs, url, dead = queues
    state = tmp_path / "state"
    daemon = launch(env_for(aws_env, fake, bucket, state, url, dead), "run")
    keys = {}
    for number in range(FILES):
        event_id = f"7f3c2a10-0000-4e5b-9a61-0c1d2e3f{number:04d}"
        name = f"f {number}+x"  # a space and a plus: URL-encoded in the notification
        key = log_key(ACCOUNT_A, "us-east-1", today(), name)
        records = [record(event_id=f"{name}-{n}") for n in range(50)] + [create_user(event_id)]
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes(records))
        keys[key] = event_id
    digest = f"AWSLogs/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/{today():%Y/%m/%d}/d.json.gz"
    s3.put_object(Bucket=bucket, Key=digest, Body=b"{}")
    done = "SELECT count(*) FROM files WHERE status = 'done'"
    await daemon.wait_until(lambda: state_count(state, done) == FILES, 90, "every file done")
    await daemon.wait_until(lambda: len(posted(fake)) == FILES, 60, "every alert")
    await daemon.wait_until(lambda: depth(sqs, url) == 0, 60, "the queue drained")

    # a file that cannot be read, and a message that is no notification: dead letters
    broken = log_key(ACCOUNT_A, "us-east-1", today(), "broken")
    s3.put_object(Bucket=bucket, Key=broken, Body=b"\x1f\x8b not gzip")
    sqs.send_message(QueueUrl=url, MessageBody='{"hello": "world"}')
    await daemon.wait_until(lambda: depth(sqs, dead) == 2, 60, "two dead letters")
    await daemon.wait_until(lambda: depth(sqs, url) == 0, 60, "the queue drained again")

    # `retry KEY` gives the file its attempts back and announces it again: it fails again
    env = env_for(aws_env, fake, bucket, state, url, dead)
    again = subprocess.run(
        [sys.executable, "-m", "umbrellabot", "retry", broken],
        env={**env, "HEALTH_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "1 file put back: it announced on SQS_QUEUE_URL again" in again.stdout
    await daemon.wait_until(lambda: depth(sqs, dead) == 3, 60, "the retried file's dead letter")
    metrics = await http_get(daemon.url("/metrics"))
    assert metrics is not None
    samples = metric_samples(metrics[1])
    outcome = "umbrellabot_queue_messages_total"
    assert samples[(outcome, (("outcome", "dead_lettered"),))] == 2
    assert samples[(outcome, (("outcome", "unreadable"),))] == 1
    assert samples[(outcome, (("outcome", "deleted"),))] >= FILES
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

    assert state_count(state, "SELECT count(*) FROM files") == FILES + 1  # no digest, no copy
    assert state_count(state, f"SELECT count(*) FROM files WHERE key = '{broken}'") == 1
    for key in keys:
        s3.head_object(Bucket=bucket, Key=f"processed/{key}")
    counts = posted(fake)
    assert set(counts) == set(keys.values()) and set(counts.values()) == {1}
    letters = sqs.receive_message(
        QueueUrl=dead, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    reasons = {m["MessageAttributes"]["umbrellabot-reason"]["StringValue"] for m in letters}
    assert "MAX_FILE_ATTEMPTS" in reasons
    assert any("neither an S3" in reason for reason in reasons)
    messages = daemon.messages()
    assert not any(m.startswith("cycle done: 1") for m in messages)  # no cycle listed files
    assert "Traceback" not in daemon.stderr()


async def test_a_missing_queue_is_one_clear_line_and_the_daemon_stays_up(
    aws_env: dict[str, str],
    bucket: str,
    fake: FakeSlack,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    missing = f"{aws_env['AWS_ENDPOINT_URL']}/123456789012/no-such-queue"
    env = env_for(aws_env, fake, bucket, tmp_path / "state", missing, missing)
    daemon = launch(env, "run")
    await daemon.wait_until(
        lambda: any("SQS_QUEUE_URL" in m and "no-such-queue" in m for m in daemon.messages()),
        30,
        "the queue's error",
    )
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()
    assert "Traceback" not in daemon.stderr()


async def test_the_silence_check_reads_the_files_the_queue_brings(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    queues: tuple[Any, str, str],
    fake: FakeSlack,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    """LOG_SILENCE_HOURS in sqs mode, where nothing is listed: an account whose files stop is
    told (0.002 hours here), and told again when they arrive again."""
    _, url, dead = queues
    state = tmp_path / "state"
    env = {**env_for(aws_env, fake, bucket, state, url, dead), "LOG_SILENCE_HOURS": "0.002"}
    daemon = launch(env, "run")
    first = log_key(ACCOUNT_A, "us-east-1", today(), "before")
    s3.put_object(Bucket=bucket, Key=first, Body=log_bytes([record(event_id="quiet-1")]))

    def said(text: str) -> bool:
        return any(text in m.text + json.dumps(m.blocks) for m in fake.posted)

    await daemon.wait_until(lambda: said("No CloudTrail log file from account"), 60, "silent")
    later = log_key(ACCOUNT_A, "us-east-1", today(), "after")
    s3.put_object(Bucket=bucket, Key=later, Body=log_bytes([record(event_id="quiet-2")]))
    await daemon.wait_until(lambda: said("arrive again"), 60, "resumed")
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

"""Two `umbrellabot run` workers in INGEST_MODE=sqs on one queue and one state (SQLite: one
host), the fake Slack, moto sending the notifications. One worker is killed (kill -9, its
process group) while files are in flight: every file is still processed once, every alert posted
once, and the survivor takes over the scheduled work."""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import Running, clean_env, free_port, state_count
from fake_slack import BOT_TOKEN, FakeSlack
from sqs_helpers import make_queue, notify

pytestmark = pytest.mark.timeout(240)

ALERTS = "CALERTS01"
FILES = 12
EVENT = re.compile(r"7f3c2a10-0000-4e5b-9a61-0c1d2e3f\d{4}")
HOLDS = "this process now does the scheduled work"


def env_for(
    aws_env: dict[str, str], fake: FakeSlack, bucket: str, state: Path, url: str
) -> dict[str, str]:
    return clean_env(
        **{
            **aws_env,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "INGEST_MODE": "sqs",
            "SQS_QUEUE_URL": url,
            "SQS_VISIBILITY_S": "30",
            "RECONCILE_SCHEDULE": "",
            "SCHEDULED_WORK_LEASE_S": "3",
            "STATE_DIR": str(state),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_CHANNEL": ALERTS,
            "SLACK_POST_INTERVAL_S": "0",
            "SLACK_ROLLUP_THRESHOLD": "1000",
            "POLL_INTERVAL": "1",
            "HEALTH_HOST": "127.0.0.1",
            "HEALTH_PORT": str(free_port()),
            "LOG_FORMAT": "json",
            "ENRICH_WORKERS": "1",
            "S3_CONCURRENCY": "2",
            "DETECTIONS_ENABLED": "false",
            "ATHENA_SETUP_ON_START": "false",
            "ALLOWED_COUNTRIES": "US",
        }
    )


def posted(fake: FakeSlack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in fake.messages_in(ALERTS):
        counts.update(set(EVENT.findall(message.text + json.dumps(message.blocks))))
    return counts


async def test_a_worker_killed_mid_file_changes_nothing(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    fake: FakeSlack,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    url, arn = make_queue(sqs, f"{bucket}-files")
    notify(s3, bucket, arn)
    state = tmp_path / "state"
    first = launch(env_for(aws_env, fake, bucket, state, url), "run", name="first")
    await first.wait_until(lambda: first.cycles_done() >= 1, 30, "the first worker up")
    second = launch(env_for(aws_env, fake, bucket, state, url), "run", name="second")
    await second.wait_until(lambda: second.cycles_done() >= 1, 30, "the second worker up")
    keys = {}
    for number in range(FILES):
        event_id = f"7f3c2a10-0000-4e5b-9a61-0c1d2e3f{number:04d}"
        name = f"w{number:02d}"
        records = [record(event_id=f"{name}-{n}") for n in range(6000)]
        records.insert(3000, create_user(event_id))
        key = log_key(ACCOUNT_A, "us-east-1", today(), name)
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes(records))
        keys[key] = event_id
    done = "SELECT count(*) FROM files WHERE status = 'done'"
    await first.wait_until(lambda: state_count(state, done) >= 2, 60, "files under way")
    assert state_count(state, done) < FILES, "all done before the kill: make the files larger"
    os.killpg(first.process.pid, signal.SIGKILL)  # the holder of the scheduled work, mid-file
    first.process.wait()
    await second.wait_until(lambda: HOLDS in second.stderr(), 30, "the survivor takes over")
    await second.wait_until(lambda: state_count(state, done) == FILES, 150, "every file done")
    await second.wait_until(lambda: len(posted(fake)) == FILES, 60, "every alert")
    code, _ = await second.stop()
    assert code == 0, second.stderr()

    assert state_count(state, "SELECT count(*) FROM files") == FILES
    assert state_count(state, "SELECT count(*) FROM files WHERE attempts > 0") == 0
    counts = posted(fake)
    assert set(counts) == set(keys.values()) and set(counts.values()) == {1}
    for key in keys:
        s3.head_object(Bucket=bucket, Key=f"processed/{key}")
    assert "Traceback" not in second.stderr()

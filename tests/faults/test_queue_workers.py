"""Two `umbrellabot run` workers in INGEST_MODE=sqs on one queue and one state (SQLite on one
host, or one DynamoDB table made by `umbrellabot state setup`), the fake Slack, moto sending the
notifications. One worker is killed (kill -9, its process group) while files are in flight:
every file is still processed once, every alert posted once, and the survivor takes over the
scheduled work."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import Running, clean_env, free_port, run_cli
from fake_slack import BOT_TOKEN, FakeSlack
from sqs_helpers import make_queue, notify

from umbrellabot.storage.dynamodb import connect
from umbrellabot.storage.ports import FileState

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


class Ledger:
    """What the state says of the files, read as a third party would (SQL, or the table)."""

    def __init__(self, backend: str, state: Path, table: str, folder: str) -> None:
        self.backend, self.state, self.folder = backend, state, folder
        self.table = table

    def files(self) -> list[FileState]:
        if self.backend == "sqlite":
            columns = "key, etag, status, attempts, reason, next_retry_at, deaths"
            database = self.state / "umbrellabot.sqlite3"
            if not database.exists():
                return []
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                return [FileState(*row) for row in db.execute(f"SELECT {columns} FROM files")]
        shared = connect(self.table, region="us-east-1", retention_days=30, index_all_events=False)
        try:
            return list(shared.files.file_states([self.folder]).values())
        finally:
            shared.close()

    def done(self) -> int:
        return sum(1 for f in self.files() if f.status == "done")


def posted(fake: FakeSlack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in fake.messages_in(ALERTS):
        counts.update(set(EVENT.findall(message.text + json.dumps(message.blocks))))
    return counts


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
async def test_a_worker_killed_mid_file_changes_nothing(
    backend: str,
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
    env = env_for(aws_env, fake, bucket, state, url)
    ledger = Ledger(
        backend, state, f"{bucket}-state", log_key(ACCOUNT_A, "us-east-1", today(), "x")
    )
    ledger.folder = ledger.folder.rsplit("/", 1)[0] + "/"
    if backend == "dynamodb":
        env |= {"STATE_BACKEND": "dynamodb", "DYNAMODB_TABLE": ledger.table}
        made = run_cli(env, "state", "setup", cwd=tmp_path)
        assert made.returncode == 0 and "created" in made.stdout, made.stderr
    first = launch(env, "run", name="first")
    await first.wait_until(lambda: first.cycles_done() >= 1, 30, "the first worker up")
    second = launch({**env, "HEALTH_PORT": str(free_port())}, "run", name="second")
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
    await first.wait_until(lambda: ledger.done() >= 2, 60, "files under way")
    assert ledger.done() < FILES, "all done before the kill: make the files larger"
    os.killpg(first.process.pid, signal.SIGKILL)  # the holder of the scheduled work, mid-file
    first.process.wait()
    await second.wait_until(lambda: HOLDS in second.stderr(), 30, "the survivor takes over")
    await second.wait_until(lambda: ledger.done() == FILES, 150, "every file done")
    await second.wait_until(lambda: len(posted(fake)) == FILES, 60, "every alert")
    code, _ = await second.stop()
    assert code == 0, second.stderr()

    files = ledger.files()
    assert len(files) == FILES and all(f.attempts == 0 for f in files)
    counts = posted(fake)
    assert set(counts) == set(keys.values()) and set(counts.values()) == {1}
    for key in keys:
        s3.head_object(Bucket=bucket, Key=f"processed/{key}")
    assert "Traceback" not in second.stderr()

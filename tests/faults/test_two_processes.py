"""Two processes on one STATE_DIR — the daemon, and `umbrellabot backfill` beside it (what
`docker compose exec umbrellabot umbrellabot backfill ...` does) — against moto's S3 and the fake
Slack: every file is processed by one of them, once, into its own enriched copy, and every
alert is posted once."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import Running, clean_env, free_port, state_count
from fake_slack import BOT_TOKEN, FakeSlack

pytestmark = pytest.mark.timeout(240)

ALERTS = "CALERTS01"
FILES = 30
RECORDS = 3000


def env_for(aws_env: dict[str, str], fake: FakeSlack, bucket: str, state: Path) -> dict[str, str]:
    return clean_env(
        **{
            **aws_env,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
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
            "S3_CONCURRENCY": "4",
            "DETECTIONS_ENABLED": "false",
            "ALLOWED_COUNTRIES": "US",
        }
    )


def put_files(s3: Any, bucket: str) -> dict[str, str]:
    """key -> the eventID of its one alert; every record's eventID names its file."""
    alerts = {}
    for number in range(FILES):
        name = f"f{number:02d}"
        event_id = f"7f3c2a10-0000-4e5b-9a61-0c1d2e3f{number:04d}"
        records = [record(event_id=f"{name}-{n}") for n in range(RECORDS)]
        records.insert(RECORDS // 2, {**create_user(event_id), "userAgent": name})
        key = log_key(ACCOUNT_A, "us-east-1", today(), name)
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes(records))
        alerts[key] = event_id
    return alerts


def posted_event_ids(fake: FakeSlack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in fake.messages_in(ALERTS):
        text = message.text + json.dumps(message.blocks)
        counts.update(set(re.findall(r"7f3c2a10-0000-4e5b-9a61-0c1d2e3f\d{4}", text)))
    return counts


async def test_a_backfill_beside_the_daemon_does_every_file_and_alert_once(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    fake: FakeSlack,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    alerts = put_files(s3, bucket)
    state = tmp_path / "state"
    env = env_for(aws_env, fake, bucket, state)
    backfill = subprocess.Popen(
        [sys.executable, "-m", "umbrellabot", "backfill", "--since", f"{today()}", "--no-progress"],
        env={**env, "HEALTH_PORT": "0"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = launch(env, "run")
    out, err = await asyncio.to_thread(backfill.communicate, timeout=180)
    assert backfill.returncode == 0, err
    done = "SELECT count(*) FROM files WHERE status = 'done'"
    await daemon.wait_until(lambda: state_count(state, done) == FILES, 120, "every file done")
    await daemon.wait_until(lambda: len(posted_event_ids(fake)) == FILES, 60, "every alert")
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

    by_backfill = int(re.search(r"(\d+) processed", out).group(1))  # type: ignore[union-attr]
    by_daemon = sum(
        int(m.group(1))
        for message in daemon.messages()
        if (m := re.match(r"cycle done: (\d+) files", message))
    )
    print(f"\nfiles processed: {by_backfill} by the backfill, {by_daemon} by the daemon")
    assert by_backfill + by_daemon == FILES  # each file by one process, once
    for key, event_id in alerts.items():
        body = s3.get_object(Bucket=bucket, Key=f"processed/{key}")["Body"].read()
        lines = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
        name = key.rsplit("_", 1)[-1].removesuffix(".json.gz")
        assert len(lines) == RECORDS + 1, key  # its own records, all of them, nothing else
        assert {line["eventID"] for line in lines} == {
            *(f"{name}-{n}" for n in range(RECORDS)),
            event_id,
        }
    counts = posted_event_ids(fake)
    assert set(counts) == set(alerts.values()) and set(counts.values()) == {1}
    assert state_count(state, "SELECT count(*) FROM leases") == 0  # every lease given back
    assert "Traceback" not in err + daemon.stderr()

"""umbrellabot under S3's faults, as they happen: the daemon as a subprocess, moto's server behind
a fault-injecting proxy (503 SlowDown, reset connections, bodies cut short, in a seeded mix),
the fake Slack. What is checked is the promise: every file processed once, every alert
delivered once, nothing abandoned, and the faults visible in the metrics without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import (
    Running,
    clean_env,
    free_port,
    http_get,
    metric_samples,
    run_cli,
    state_count,
)
from fake_slack import BOT_TOKEN, FakeSlack
from fault_proxy import FaultProxy, started

pytestmark = pytest.mark.timeout(240)

ALERTS = "CALERTS01"
FILES = 24
SEED = 20261202


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    faults = await started(
        moto_endpoint,
        seed=SEED,
        rates={
            "GetObject": {"cut": 0.3, "slowdown": 0.15, "reset": 0.1},
            "ListObjectsV2": {"slowdown": 0.2, "reset": 0.1},
            "PutObject": {"slowdown": 0.15, "reset": 0.1},
        },
    )
    yield faults
    await faults.stop()


def daemon_env(
    aws_env: dict[str, str], proxy: FaultProxy, fake: FakeSlack, bucket: str, state: Path
) -> dict[str, str]:
    return clean_env(
        **{
            **aws_env,
            "AWS_ENDPOINT_URL": proxy.url,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "STATE_DIR": str(state),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_CHANNEL": ALERTS,
            "SLACK_POST_INTERVAL_S": "0",
            "SLACK_ROLLUP_THRESHOLD": "1000",
            "POLL_INTERVAL": "1",
            "RETRY_BASE_DELAY_S": "0",
            "MAX_FILE_ATTEMPTS": "2",  # a transient fault counted as a bad file shows at once
            "HEALTH_HOST": "127.0.0.1",
            "HEALTH_PORT": str(free_port()),
            "LOG_FORMAT": "json",
            "ENRICH_WORKERS": "1",
            "DETECTIONS_ENABLED": "false",
            "ALLOWED_COUNTRIES": "US",
        }
    )


def put_files(s3: Any, bucket: str) -> list[str]:
    """FILES log files with one alerting CreateUser each (and quiet records around it)."""
    event_ids = []
    for number in range(FILES):
        event_id = str(uuid.uuid4())
        event_ids.append(event_id)
        records = [record(event_id=f"quiet-{number}-{n}") for n in range(50)]
        records.insert(25, create_user(event_id))
        key = log_key(ACCOUNT_A, "us-east-1", today(), f"f{number:02d}")
        s3.put_object(Bucket=bucket, Key=key, Body=log_bytes(records))
    return event_ids


def alerted(fake: FakeSlack) -> Counter[str]:
    """eventID -> how many alert messages name it."""
    counts: Counter[str] = Counter()
    for message in fake.messages_in(ALERTS):
        text = message.text + json.dumps(message.blocks)
        for word in text.replace("`", " ").split():
            if len(word) == 36 and word.count("-") == 4:
                counts[word] += 1
    return counts


async def test_every_file_and_alert_exactly_once_through_s3_faults(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    fake: FakeSlack,
    proxy: FaultProxy,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    event_ids = put_files(s3, bucket)
    state = tmp_path / "state"
    daemon = launch(daemon_env(aws_env, proxy, fake, bucket, state), "run")

    def done() -> int:
        return state_count(state, "SELECT count(*) FROM files WHERE status = 'done'")

    await daemon.wait_until(lambda: done() == FILES, 150, f"{FILES} files done")
    await daemon.wait_until(lambda: len(alerted(fake)) == FILES, 60, "every alert in Slack")
    metrics = await http_get(daemon.url("/metrics"))
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

    print(f"\nfaults injected: {dict(proxy.injected)}; passed: {dict(proxy.passed)}")
    # the faults happened, of every kind
    assert proxy.total("cut") >= 3 and proxy.total("slowdown") >= 3 and proxy.total("reset") >= 3
    # every file once: done, never counted as a bad file, one enriched copy each
    assert state_count(state, "SELECT count(*) FROM files") == FILES
    assert state_count(state, "SELECT count(*) FROM files WHERE attempts > 0") == 0
    assert state_count(state, "SELECT count(*) FROM files WHERE status = 'abandoned'") == 0
    copies = s3.list_objects_v2(Bucket=bucket, Prefix="processed/")
    assert copies["KeyCount"] == FILES
    # every alert once
    counts = alerted(fake)
    assert set(counts) == set(event_ids)
    assert set(counts.values()) == {1}
    assert state_count(state, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == 0
    # visible, as counts and warning lines, never as a traceback
    assert metrics is not None
    samples = metric_samples(metrics[1])
    assert samples[("umbrellabot_s3_throttles_total", ())] >= 1
    assert samples[("umbrellabot_s3_retries_total", ())] >= 1
    stderr = daemon.stderr()
    assert "Traceback" not in stderr
    assert not [e for e in daemon.log_entries() if e["level"] in ("error", "critical")]
    assert any("S3 throttled" in message for message in daemon.messages())


def test_an_s3_outage_is_one_line_and_exit_3(aws_env: dict[str, str], tmp_path: Path) -> None:
    env = clean_env(
        **{
            **aws_env,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "CLOUDTRAIL_BUCKET_NAME": "trail",
            "STATE_DIR": str(tmp_path / "state"),
            "S3_MAX_ATTEMPTS": "2",
        }
    )
    done = run_cli(env, "run", "--once", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("umbrellabot: s3:ListBucket prefix ''") and "Traceback" not in line
    assert "EndpointConnectionError" in line


async def test_a_kms_refusal_is_one_sentence_naming_the_key_and_exit_3(
    aws_env: dict[str, str], s3: Any, bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """moto enforces no KMS: the proxy answers GetObject with S3's own KMS AccessDenied."""
    put_files(s3, bucket)
    proxy = await started(moto_endpoint, seed=SEED, rates={"GetObject": {"kms": 1.0}})
    try:
        env = clean_env(
            **{
                **aws_env,
                "AWS_ENDPOINT_URL": proxy.url,
                "CLOUDTRAIL_BUCKET_NAME": bucket,
                "STATE_DIR": str(tmp_path / "state"),
                "DETECTIONS_ENABLED": "false",
            }
        )
        done = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    finally:
        await proxy.stop()
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("umbrellabot: KMS refused kms:Decrypt on arn:aws:kms:us-east-1:")
    assert ":key/1234abcd-12ab-34cd-56ef-1234567890ab for s3:GetObject" in line
    assert "key policy" in line and "Traceback" not in done.stderr

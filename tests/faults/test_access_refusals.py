"""A refusal on one account's prefix does not stall the others: S3 or KMS refusing one account
(its folder, its day folder, its files' key) skips that prefix, alerts
`umbrellabot-access-denied` once (naming the action, the resource and the key), and reads the
rest; once allowed, the skipped files are read. Exit 3 only when nothing is readable (the KMS
test in test_s3_faults.py). moto enforces no IAM or KMS: the proxy answers as S3 does."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, ACCOUNT_B, create_user, log_key, today
from daemon_harness import clean_env, run_cli, state_count
from fake_slack import BOT_TOKEN, FakeSlack
from fault_proxy import FaultProxy, started
from s3_helpers import put

pytestmark = pytest.mark.timeout(240)

ALERTS = "CALERTS01"
ACCOUNT_C, ACCOUNT_D = "333333333333", "444444444444"
KMS_KEY = "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def refused(operation: str, key: str) -> bool:
    """B's day folders may not be listed, C's files not decrypted, D's folder not listed."""
    if operation == "ListObjectsV2":
        return f"{ACCOUNT_B}/CloudTrail/us-east-1/2" in key or key == f"AWSLogs/{ACCOUNT_D}/"
    return operation == "GetObject" and f"/{ACCOUNT_C}/" in key


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    faults = await started(
        moto_endpoint,
        seed=1,
        rates={"ListObjectsV2": {"denied": 1.0}, "GetObject": {"kms": 1.0}},
        applies=refused,
    )
    yield faults
    await faults.stop()


def access_alerts(fake: FakeSlack) -> list[str]:
    texts = [m.text + json.dumps(m.blocks) for m in fake.messages_in(ALERTS)]
    return [text for text in texts if "umbrellabot-access-denied" in text]


def alerted_events(fake: FakeSlack, event_ids: list[str]) -> list[str]:
    texts = " ".join(m.text + json.dumps(m.blocks) for m in fake.messages_in(ALERTS))
    return [event_id for event_id in event_ids if event_id in texts]


async def test_a_refused_account_is_skipped_and_alerted_and_the_others_read(
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    fake: FakeSlack,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    event_ids = {account: str(uuid.uuid4()) for account in (ACCOUNT_A, ACCOUNT_B, ACCOUNT_C)}
    event_ids[ACCOUNT_D] = str(uuid.uuid4())
    for account, event_id in event_ids.items():
        put(s3, bucket, log_key(account, "us-east-1", today(), "a"), [create_user(event_id)])
    env = clean_env(
        **{
            **aws_env,
            "AWS_ENDPOINT_URL": proxy.url,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "STATE_DIR": str(tmp_path / "state"),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_CHANNEL": ALERTS,
            "SLACK_POST_INTERVAL_S": "0",
            "DETECTIONS_ENABLED": "false",
            "ENRICH_WORKERS": "0",
        }
    )
    first = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert alerted_events(fake, list(event_ids.values())) == [event_ids[ACCOUNT_A]]
    alerts = access_alerts(fake)
    assert len(alerts) == 3, alerts
    [listing] = [a for a in alerts if f"{ACCOUNT_B}/CloudTrail/us-east-1/" in a]
    assert "s3:ListBucket" in listing and f"s3://{bucket}/AWSLogs/{ACCOUNT_B}/" in listing
    [kms] = [a for a in alerts if f"{ACCOUNT_C}/" in a]
    assert "kms:Decrypt" in kms and KMS_KEY in kms
    [account] = [a for a in alerts if f"AWSLogs/{ACCOUNT_D}/" in a]
    assert "s3:ListBucket" in account
    lines = first.stderr.splitlines()
    assert (
        len([line for line in lines if "refused" in line]) == 3 and "Traceback" not in first.stderr
    )
    assert state_count(tmp_path / "state", "SELECT count(*) FROM files WHERE attempts > 0") == 0

    again = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(access_alerts(fake)) == 3  # told once (a day), not every cycle

    proxy.rates = {}  # the policies are fixed
    fixed = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert sorted(alerted_events(fake, list(event_ids.values()))) == sorted(event_ids.values())
    assert len(access_alerts(fake)) == 3
    assert state_count(tmp_path / "state", "SELECT count(*) FROM files WHERE status = 'done'") == 4

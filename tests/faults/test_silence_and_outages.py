"""Time as the process lives it, moved with faketime: an account silent for LOG_SILENCE_HOURS
is one alert naming its last file, and one line in that alert's thread when files resume; a
downtime longer than LOOKBACK_DAYS loses no file delivered meanwhile."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, ACCOUNT_B, create_user, log_key, today
from daemon_harness import clean_env, run_cli, run_cli_at, state_count
from fake_slack import BOT_TOKEN, FakeSlack
from s3_helpers import all_keys, put

pytestmark = pytest.mark.timeout(240)

ALERTS = "CALERTS01"


def env_for(
    aws_env: dict[str, str], fake: FakeSlack, bucket: str, tmp_path: Path, **more: str
) -> dict[str, str]:
    return clean_env(
        **{
            **aws_env,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "STATE_DIR": str(tmp_path / "state"),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SLACK_CHANNEL": ALERTS,
            "SLACK_POST_INTERVAL_S": "0",
            "DETECTIONS_ENABLED": "false",
            "ENRICH_WORKERS": "0",
            **more,
        }
    )


def silence_alerts(fake: FakeSlack) -> dict[str, Any]:
    """account -> its silence alert message."""
    found = {}
    for message in fake.messages_in(ALERTS):
        text = message.text + json.dumps(message.blocks)
        if "cloudtrail-delivery-silent" in text:
            for account in (ACCOUNT_A, ACCOUNT_B):
                if f"from account {account}" in text:
                    found[account] = message
    return found


def silence_count(fake: FakeSlack) -> int:
    return sum(
        "cloudtrail-delivery-silent" in m.text + json.dumps(m.blocks)
        for m in fake.messages_in(ALERTS)
    )


async def test_silence_is_one_alert_and_files_resuming_a_line_in_its_thread(
    aws_env: dict[str, str], s3: Any, bucket: str, fake: FakeSlack, tmp_path: Path
) -> None:
    first_a = log_key(ACCOUNT_A, "us-east-1", today(), "first")
    first_b = log_key(ACCOUNT_B, "eu-west-1", today(), "first")
    put(s3, bucket, first_a, [create_user(str(uuid.uuid4()))])
    put(s3, bucket, first_b, [create_user(str(uuid.uuid4()))])
    env = env_for(aws_env, fake, bucket, tmp_path, LOG_SILENCE_HOURS="6")

    quiet = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert silence_alerts(fake) == {}  # the files are fresh

    later = await asyncio.to_thread(run_cli_at, "+7h", env, "run", "--once", cwd=tmp_path)
    assert later.returncode == 0, later.stderr
    silent = silence_alerts(fake)
    assert set(silent) == {ACCOUNT_A, ACCOUNT_B}
    text_a = silent[ACCOUNT_A].text + json.dumps(silent[ACCOUNT_A].blocks)
    assert "for 6 hours" in text_a and first_a in text_a and first_b not in text_a

    again = await asyncio.to_thread(run_cli_at, "+8h", env, "run", "--once", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert silence_count(fake) == 2  # one per silence, not one per cycle

    resumed_key = log_key(ACCOUNT_A, "us-east-1", today(), "resumed")
    put(s3, bucket, resumed_key, [create_user(str(uuid.uuid4()))])
    back = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    [line] = fake.replies_to(silent[ACCOUNT_A].ts)
    assert f"Log files from account {ACCOUNT_A} arrive again" in line.text
    assert resumed_key in line.text
    assert fake.replies_to(silent[ACCOUNT_B].ts) == []  # B is still silent, told once
    assert silence_count(fake) == 2


async def test_a_week_down_loses_no_file_delivered_meanwhile(
    aws_env: dict[str, str], s3: Any, bucket: str, fake: FakeSlack, tmp_path: Path
) -> None:
    env = env_for(aws_env, fake, bucket, tmp_path, LOOKBACK_DAYS="1", LOG_SILENCE_HOURS="0")
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", today(), "before"), [create_user("b-1")])
    before = await asyncio.to_thread(run_cli, env, "run", "--once", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    # delivered on days 2..5 of a VM that is down; it comes back on day 7
    meanwhile = [
        log_key(ACCOUNT_A, "us-east-1", today() + timedelta(days=n), f"down{n}") for n in (2, 3, 5)
    ]
    for number, key in enumerate(meanwhile):
        put(s3, bucket, key, [create_user(f"down-{number}")])
    back = await asyncio.to_thread(run_cli_at, "+7d", env, "run", "--once", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert set(all_keys(s3, bucket, "processed/")) >= {f"processed/{key}" for key in meanwhile}
    assert state_count(tmp_path / "state", "SELECT count(*) FROM files WHERE status = 'done'") == 4
    texts = " ".join(m.text for m in fake.messages_in(ALERTS))
    assert all(f"down-{number}" in texts for number in range(3))

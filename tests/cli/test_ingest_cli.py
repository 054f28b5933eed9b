"""`umbrellabot run --once` and `backfill` as users run them: the CLI in a subprocess against
moto's S3 server, including IAM refusals and a kill -9 in the middle of a cycle."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import ACCOUNT_A, create_user, days_ago, log_key, record, today
from s3_helpers import all_keys, enriched, put


def cli_env(aws_env: dict[str, str], bucket: str, state: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CLOUDTRAIL_"))}
    return {
        **keep,
        **aws_env,
        "CLOUDTRAIL_BUCKET_NAME": bucket,
        "STATE_DIR": str(state),
        "ALLOWED_COUNTRIES": "US",
        **extra,
    }


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "umbrellabot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_run_once_prints_new_alerts_once(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path
) -> None:
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", today(), "a"), [create_user("ev-1")])
    env = cli_env(aws_env, bucket, tmp_path / "state")
    first = run_cli(env, "run", "--once", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "iam-user-created" in first.stdout and "ev-1" in first.stdout
    assert "1 processed" in first.stdout
    second = run_cli(env, "run", "--once", cwd=tmp_path)
    assert second.returncode == 0
    assert "ev-1" not in second.stdout and "0 processed" in second.stdout


def test_cannot_run_messages(aws_env: dict[str, str], tmp_path: Path) -> None:
    env = cli_env(aws_env, "no-such-trail-bucket", tmp_path / "state")
    done = run_cli(env, "run", "--once", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.strip() == (
        "umbrellabot: bucket 'no-such-trail-bucket' does not exist (CLOUDTRAIL_BUCKET_NAME)"
    )
    no_bucket = run_cli({**env, "CLOUDTRAIL_BUCKET_NAME": ""}, "run", "--once", cwd=tmp_path)
    assert no_bucket.returncode == 2
    # no bucket: local mode, and the local folder must exist
    assert no_bucket.stderr.startswith("umbrellabot: CLOUDTRAIL_LOCAL_PATH: no such folder")
    bad_prefix = run_cli(
        {**env, "CLOUDTRAIL_INITIAL_PREFIX": "AWSLogs/nope/"}, "run", "--once", cwd=tmp_path
    )
    assert bad_prefix.returncode == 2
    assert bad_prefix.stderr.startswith("umbrellabot: invalid setting CLOUDTRAIL_INITIAL_PREFIX")


def _moto_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request) as response:
        response.read()


@pytest.fixture
def iam_enforced(aws_env: dict[str, str]) -> Iterator[Any]:
    """moto checking IAM policies for every request (the fixture's own setup ran before)."""
    iam = boto3.client("iam", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    yield iam
    _moto_auth(aws_env["AWS_ENDPOINT_URL"], "inf")


def _user(iam: Any, actions: list[str], bucket: str) -> dict[str, str]:
    name = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def test_access_denied_names_bucket_prefix_and_action(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path, iam_enforced: Any
) -> None:
    key = log_key(ACCOUNT_A, "us-east-1", today(), "a")
    put(s3, bucket, key, [record()])
    list_only = _user(iam_enforced, ["s3:ListBucket"], bucket)
    nothing = _user(iam_enforced, ["s3:GetBucketTagging"], bucket)
    _moto_auth(aws_env["AWS_ENDPOINT_URL"], "0")

    env = cli_env(aws_env, bucket, tmp_path / "s1", **list_only)
    denied_get = run_cli(env, "run", "--once", cwd=tmp_path)
    assert denied_get.returncode == 3
    lines = denied_get.stderr.strip().splitlines()
    assert lines == [
        f"umbrellabot: S3 refused s3:GetObject on bucket {bucket!r}, key {key!r}: "
        "AccessDenied: Access Denied. Check the credentials and the IAM policy"
        " (config/iam-policy.json)"
    ]

    env = cli_env(aws_env, bucket, tmp_path / "s2", **nothing)
    denied_list = run_cli(env, "run", "--once", cwd=tmp_path)
    assert denied_list.returncode == 3
    assert denied_list.stderr.startswith(
        f"umbrellabot: S3 refused s3:ListBucket on bucket {bucket!r}, prefix ''"
    )
    assert "Traceback" not in denied_list.stderr + denied_get.stderr

    unknown_key = run_cli(cli_env(aws_env, bucket, tmp_path / "s3"), "run", "--once", cwd=tmp_path)
    assert unknown_key.returncode == 3
    assert "InvalidAccessKeyId" in unknown_key.stderr


def _done_files(state: Path) -> int:
    database = state / "umbrellabot.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_mid_cycle_then_restart_is_exactly_once(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path
) -> None:
    files = 20
    keys = [log_key(ACCOUNT_A, "us-east-1", today(), f"f{n:02d}") for n in range(files)]
    for number, key in enumerate(keys):
        records = [record(event_id=f"r-{number}-{i}") for i in range(3000)]
        records.append(create_user(f"admin-{number}"))
        records.append(create_user("delivered-twice"))  # CloudTrail may repeat an event
        put(s3, bucket, key, records)
    state = tmp_path / "state"
    env = cli_env(aws_env, bucket, state, ENRICH_WORKERS="1", S3_CONCURRENCY="1")
    victim = subprocess.Popen(
        [sys.executable, "-m", "umbrellabot", "run", "--once"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while _done_files(state) < 3 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert victim.poll() is None, "the cycle ended before it could be killed"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert 3 <= _done_files(state) < files

    rerun = run_cli(env, "run", "--once", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert all_keys(s3, bucket, "processed/") == sorted(f"processed/{key}" for key in keys)
    for number, key in enumerate(keys):
        lines = enriched(s3, bucket, f"processed/{key}")
        assert len(lines) == 3002
        assert lines[0]["eventID"] == f"r-{number}-0"
        assert lines[3000]["xrules"] == ["iam-user-created"]
    with sqlite3.connect(state / "umbrellabot.sqlite3") as db:
        rows = db.execute("SELECT event_id, rule_id, delivered_at FROM outbox").fetchall()
    expected = {(f"admin-{n}", "iam-user-created") for n in range(files)}
    expected.add(("delivered-twice", "iam-user-created"))
    assert sorted((a, b) for a, b, _ in rows) == sorted(expected)  # none lost, none twice
    assert all(delivered is not None for _, _, delivered in rows)
    assert not list((state / "work").glob("*"))


def test_backfill_a_past_day_then_rerun(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path, shared_data: Path
) -> None:
    root = shared_data / "cloudtrail" / "s3-layout"
    for path in root.rglob("*.json.gz"):
        put(s3, bucket, str(path.relative_to(root)), path.read_bytes())
    env = cli_env(aws_env, bucket, tmp_path / "state")
    done = run_cli(env, "backfill", "--since", "2023-07-09", "--until", "2023-07-10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "55 processed, 2,900 records" in done.stdout
    again = run_cli(env, "backfill", "--since", "2023-07-10", cwd=tmp_path)
    assert again.returncode == 0 and "0 processed" in again.stdout
    backwards = run_cli(
        env, "backfill", "--since", "2023-07-10", "--until", "2023-07-01", cwd=tmp_path
    )
    assert backwards.returncode == 2 and "before" in backwards.stderr


def test_retry_needs_keys_or_all_and_names_what_was_not_given_up_on(tmp_path: Path) -> None:
    env = {**os.environ, "STATE_DIR": str(tmp_path / "state")}
    both = subprocess.run(
        [sys.executable, "-m", "umbrellabot", "retry", "k", "--all"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert both.returncode == 2 and "name the files (KEY ...) or give --all" in both.stderr
    nothing = subprocess.run(
        [sys.executable, "-m", "umbrellabot", "retry", "--all"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert nothing.returncode == 1 and "no state in" in nothing.stderr


def test_a_backfill_past_retention_alerts_only_when_asked(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The outbox that told those events once is pruned after STATE_RETENTION_DAYS: a backfill
    that far back enriches and indexes them, and alerts only with --alerts."""
    old_day, recent_day = days_ago(100), days_ago(10)
    old = {**create_user("old-1"), "eventTime": f"{old_day}T10:00:00Z"}
    recent = {**create_user("recent-1"), "eventTime": f"{recent_day}T10:00:00Z"}
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", old_day, "old"), [old])
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", recent_day, "recent"), [recent])

    def outbox(state: Path) -> list[str]:
        with sqlite3.connect(state / "umbrellabot.sqlite3") as db:
            return sorted(row[0] for row in db.execute("SELECT event_id FROM outbox"))

    quiet = cli_env(aws_env, bucket, tmp_path / "quiet", DETECTIONS_ENABLED="false")
    done = run_cli(quiet, "backfill", "--since", f"{old_day}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 processed" in done.stdout and outbox(tmp_path / "quiet") == ["recent-1"]
    with sqlite3.connect(tmp_path / "quiet" / "umbrellabot.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 2

    loud = cli_env(aws_env, bucket, tmp_path / "loud", DETECTIONS_ENABLED="false")
    done = run_cli(loud, "backfill", "--since", f"{old_day}", "--alerts", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert outbox(tmp_path / "loud") == ["old-1", "recent-1"]

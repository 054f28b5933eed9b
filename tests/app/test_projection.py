"""A new account, region or layout in the trail's bucket reaches Athena: the projection updated
(and a new layout's table made) by the daemon itself with ATHENA_SETUP_ON_START (against moto's
Athena), else one line per account naming the command."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import ACCOUNT_A, ACCOUNT_B, create_user, log_key, today
from daemon_harness import Running, clean_env, free_port
from glue_catalog import executions, play_new_ddl
from s3_helpers import put

from umbrellabot.app.projection import ProjectionWatch
from umbrellabot.errors import UsageError
from umbrellabot.model.layout import RegionFolder

ORG = "o-abcd123456"


def folder(account: str, region: str) -> RegionFolder:
    return RegionFolder(f"AWSLogs/{account}/CloudTrail/{region}/", account, region)


async def test_without_setup_one_line_per_new_account(caplog: pytest.LogCaptureFixture) -> None:
    watch = ProjectionWatch(None)
    assert await watch.after_cycle([folder(ACCOUNT_A, "us-east-1")]) == []  # the baseline
    with caplog.at_level(logging.WARNING):
        lines = await watch.after_cycle(
            [folder(ACCOUNT_A, "us-east-1"), folder(ACCOUNT_B, "us-east-1")]
        )
    assert len(lines) == 1 and f"account {ACCOUNT_B} is new" in lines[0]
    assert "`umbrellabot athena setup`" in lines[0]
    assert await watch.after_cycle([folder(ACCOUNT_B, "us-east-1")]) == []  # said once
    [regions] = await watch.after_cycle([folder(ACCOUNT_B, "eu-north-1")])
    assert "regions eu-north-1 are new" in regions


async def test_with_setup_the_projection_is_updated_and_a_failure_tried_again() -> None:
    calls: list[list[str]] = []
    fail = [True]

    async def update(regions: Sequence[RegionFolder]) -> list[str]:
        calls.append(sorted(f"{r.account}/{r.region}" for r in regions))
        if fail[0]:
            raise UsageError("Athena is down")
        return ["projection set"]

    watch = ProjectionWatch(update)
    await watch.after_cycle([folder(ACCOUNT_A, "us-east-1")])
    both = [folder(ACCOUNT_A, "us-east-1"), folder(ACCOUNT_B, "us-east-1")]
    assert await watch.after_cycle(both) == []  # failed: not taken as known
    fail[0] = False
    assert await watch.after_cycle(both) == ["projection set"]
    assert await watch.after_cycle(both) == []
    assert calls == [[f"{ACCOUNT_A}/us-east-1", f"{ACCOUNT_B}/us-east-1"]] * 2


@pytest.mark.timeout(120)
async def test_the_daemon_adds_a_new_account_and_a_new_layout(
    aws_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path, launch: Callable[..., Running]
) -> None:
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    athena = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1")
    glue = boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1")
    played = executions(athena)  # other tests' statements on the shared server stay unplayed
    database = f"trails_{uuid.uuid4().hex[:8]}"
    put(s3, bucket, log_key(ACCOUNT_A, "us-east-1", today(), "a"), [create_user()])
    env = clean_env(
        **{
            **aws_env,
            "CLOUDTRAIL_BUCKET_NAME": bucket,
            "STATE_DIR": str(tmp_path / "state"),
            "QUERY_ENGINE": "athena",
            "ATHENA_SETUP_ON_START": "true",
            "ATHENA_DATABASE": database,
            "DETECTIONS_ENABLED": "false",
            "POLL_INTERVAL": "1",
            "LOG_FORMAT": "json",
            "HEALTH_PORT": str(free_port()),
            "HEALTH_HOST": "127.0.0.1",
            "ENRICH_WORKERS": "0",
        }
    )
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: daemon.cycles_done() >= 1, 60, "a first cycle")
    put(s3, bucket, log_key(ACCOUNT_B, "eu-west-1", today(), "b"), [create_user()])

    def updated() -> list[str]:
        return [m for m in daemon.messages() if m.startswith("athena setup (new accounts")]

    await daemon.wait_until(lambda: bool(updated()), 60, "the projection updated")
    text = " ".join(updated())
    assert f"projection set to accounts {ACCOUNT_A}, {ACCOUNT_B}," in text

    # An organization trail starts beside the per-account one: a table of its own, while the
    # per-account trail's table keeps reading what it read (Athena's DDL played into Glue).
    play_new_ddl(athena, glue, played)
    put(s3, bucket, log_key(ACCOUNT_B, "us-east-1", today(), "c", org=ORG), [create_user()])
    made = f"cloudtrail_enriched__o_abcd123456: created if missing, reads AWSLogs/{ORG}/"

    def layout_table() -> bool:
        return any(made in line for line in updated())

    await daemon.wait_until(layout_table, 60, "the new layout's table made")
    [summary] = [line for line in updated() if "one table each" in line]
    assert f"{database}.cloudtrail_enriched reads AWSLogs/;" in summary  # still the per-account's
    assert f"{database}.cloudtrail_enriched__o_abcd123456 reads AWSLogs/{ORG}/," in summary
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

"""Two `umbrellabot run` processes on one state: one of them does the work done once (the SQL
detections, the silence check, the digest, pruning), and when it is killed (kill -9) the other
takes it over within one lease period (SCHEDULED_WORK_LEASE_S); a clean stop hands it over at
once."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from daemon_harness import Running, clean_env, free_port

pytestmark = pytest.mark.timeout(120)

HOLDS = "this process now does the scheduled work"
LEASE_S = 3


def env_for(tmp_path: Path) -> dict[str, str]:
    trail = tmp_path / "trail"
    trail.mkdir(exist_ok=True)
    return clean_env(
        CLOUDTRAIL_LOCAL_PATH=str(trail),
        ENRICHED_LOCAL_PATH=str(tmp_path / "enriched"),
        STATE_DIR=str(tmp_path / "state"),
        HEALTH_HOST="127.0.0.1",
        HEALTH_PORT=str(free_port()),
        POLL_INTERVAL="1",
        LOG_FORMAT="json",
        ALLOWED_COUNTRIES="US",
        SCHEDULED_WORK_LEASE_S=str(LEASE_S),
    )


def holding_since(process: Running) -> list[float]:
    """When the process logged that it took the scheduled work, as epoch seconds."""
    found = []
    for line in process.stderr().splitlines():
        if line.startswith("{") and HOLDS in line:
            stamp = json.loads(line)["time"].replace("Z", "+00:00")
            found.append(datetime.fromisoformat(stamp).timestamp())
    return found


async def test_one_process_does_the_scheduled_work_and_another_takes_it_over(
    tmp_path: Path, launch: Callable[..., Running]
) -> None:
    first = launch(env_for(tmp_path), "run", name="first")  # takes the work as it starts
    await first.wait_until(lambda: first.cycles_done() >= 2, 30, "cycles of the first")
    second = launch(env_for(tmp_path), "run", name="second")
    await second.wait_until(lambda: second.cycles_done() >= 3, 30, "cycles of the second")
    assert not holding_since(second)  # the first holds it, renewed

    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    killed_at = datetime.now().timestamp()
    waited = await second.wait_until(lambda: bool(holding_since(second)), 30, "a takeover")
    assert waited <= LEASE_S + 2  # within one lease period (and the renewal that sees it)
    assert holding_since(second)[0] >= killed_at - 0.5

    third = launch(env_for(tmp_path), "run", name="third")
    await third.wait_until(lambda: third.cycles_done() >= 2, 30, "cycles of the third")
    assert not holding_since(third)
    code, _ = await second.stop()  # a clean stop hands the work over at once
    assert code == 0, second.stderr()
    await third.wait_until(lambda: bool(holding_since(third)), LEASE_S, "a handover")
    code, _ = await third.stop()
    assert code == 0, third.stderr()

"""Enrichment worker processes killed with SIGKILL (as the kernel's OOM killer does), while the
daemon runs as a subprocess on a local folder: nothing is lost, no file is blamed for a death it
did not cause, and a file that kills its worker every time is given up on with that reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from daemon_harness import (
    Running,
    answers,
    clean_env,
    free_port,
    http_get,
    metric_samples,
    run_cli,
    state_count,
)

from umbrellabot.model.own_alerts import FILE_ABANDONED

pytestmark = pytest.mark.timeout(240)


def env_for(tmp_path: Path, trail: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        CLOUDTRAIL_LOCAL_PATH=str(trail),
        ENRICHED_LOCAL_PATH=str(tmp_path / "enriched"),
        STATE_DIR=str(tmp_path / "state"),
        HEALTH_HOST="127.0.0.1",
        HEALTH_PORT=str(free_port()),
        POLL_INTERVAL="1",
        RETRY_BASE_DELAY_S="0",
        LOG_FORMAT="json",
        DETECTIONS_ENABLED="false",
        ALLOWED_COUNTRIES="US",
        **extra,
    )


def write_file(trail: Path, name: str, event_id: str, records: int) -> None:
    key = log_key(ACCOUNT_A, "us-east-1", today(), name)
    body = [record(event_id=f"{name}-{n}") for n in range(records)]
    body.insert(records // 2, create_user(event_id))
    path = trail / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(log_bytes(body))


def workers_of(daemon: Running) -> list[psutil.Process]:
    """The daemon's enrichment worker processes (spawned: `spawn_main` in their command)."""
    try:
        children = psutil.Process(daemon.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
    return found


def kill(process: psutil.Process) -> bool:
    try:
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def files(state: Path, where: str = "1 = 1") -> int:
    return state_count(state, f"SELECT count(*) FROM files WHERE {where}")


async def test_a_worker_killed_mid_file_loses_nothing_and_blames_no_file(
    tmp_path: Path, launch: Callable[..., Running]
) -> None:
    trail = tmp_path / "trail"
    event_ids = [f"7f3c2a10-0000-4e5b-9a61-0c1d2e3f{n:04d}" for n in range(8)]
    for number, event_id in enumerate(event_ids):
        write_file(trail, f"f{number}", event_id, 20_000)
    state = tmp_path / "state"
    daemon = launch(env_for(tmp_path, trail, ENRICH_WORKERS="2", S3_CONCURRENCY="2"), "run")
    await daemon.wait_until(lambda: files(state, "status = 'done'") >= 1, 60, "a first file")
    await daemon.wait_until(lambda: bool(workers_of(daemon)), 10, "worker processes")
    killed = kill(workers_of(daemon)[0])  # in the middle of the files in flight
    assert killed
    await daemon.wait_until(lambda: files(state, "status = 'done'") == 8, 120, "every file done")

    async def cycle_succeeded() -> bool:  # the files commit before their cycle ends
        answer = await http_get(daemon.url("/readyz"))
        return answer is not None and answer[0] == 200

    await daemon.wait_until(cycle_succeeded, 60, "a cycle that succeeded")
    metrics = await http_get(daemon.url("/metrics"))
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

    assert files(state) == 8
    assert files(state, "attempts > 0 OR deaths > 0 OR status != 'done'") == 0
    assert len(list((tmp_path / "enriched").rglob("*.json.gz"))) == 8
    printed = daemon.stdout()
    assert all(printed.count(event_id) == 1 for event_id in event_ids)  # every alert once
    assert metrics is not None
    assert metric_samples(metrics[1])[("umbrellabot_worker_pool_restarts_total", ())] >= 1
    assert any("an enrichment worker process died" in m for m in daemon.messages())
    assert "Traceback" not in daemon.stderr()


@pytest.fixture
async def killer() -> AsyncIterator[Callable[[Running, Path], asyncio.Task[None]]]:
    """Kill every worker process of the daemon while a file is being enriched (a work file
    exists), until the task is cancelled: a file that kills its worker every time."""
    tasks: list[asyncio.Task[None]] = []

    def start(daemon: Running, work: Path) -> asyncio.Task[None]:
        async def loop() -> None:
            while True:
                if any(work.glob("*/*.in")):
                    for worker in workers_of(daemon):
                        kill(worker)
                await asyncio.sleep(0.01)

        tasks.append(asyncio.create_task(loop()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_file_that_kills_its_worker_every_time_is_given_up_on(
    tmp_path: Path,
    launch: Callable[..., Running],
    killer: Callable[[Running, Path], asyncio.Task[None]],
) -> None:
    trail = tmp_path / "trail"
    write_file(trail, "poison", "7f3c2a10-0000-4e5b-9a61-0c1d2e3f9999", 40_000)
    state = tmp_path / "state"
    daemon = launch(env_for(tmp_path, trail, ENRICH_WORKERS="1", S3_CONCURRENCY="1"), "run")
    killing = killer(daemon, state / "work")
    await daemon.wait_until(lambda: files(state, "status = 'abandoned'") == 1, 120, "given up")
    assert files(state, "deaths = 3 AND attempts = 0") == 1  # deaths, not read failures
    reason = state_count(state, "SELECT count(*) FROM files WHERE reason LIKE '%worker%died%'")
    assert reason == 1
    ready = await http_get(daemon.url("/readyz"))
    assert ready is not None and ready[0] == 503
    assert any("keep dying" in problem for problem in json.loads(ready[1])["problems"])
    errors = [e["message"] for e in daemon.log_entries() if e["level"] == "error"]
    assert any(m.startswith("giving up on") and "worker process died" in m for m in errors)
    # told like any alert, listed by /readyz, counted as a file
    await daemon.wait_until(lambda: FILE_ABANDONED in daemon.stdout(), 10, "the alert")
    await daemon.wait_until(lambda: given_up_in_readyz(daemon), 10, "/readyz lists the file")
    metrics = await http_get(daemon.url("/metrics"))
    assert metrics is not None
    assert metric_samples(metrics[1])[("umbrellabot_files_abandoned_total", ())] == 1
    # the cause fixed (no more kills), `retry` puts it back and the next cycle enriches it
    killing.cancel()
    key = next(trail.rglob("*poison*")).relative_to(trail).as_posix()
    put_back = run_cli(daemon.env, "retry", str(trail / key), cwd=tmp_path)  # as logged
    assert put_back.returncode == 0, put_back.stderr
    assert "1 file put back" in put_back.stdout
    await daemon.wait_until(lambda: files(state, "status = 'done'") == 1, 60, "enriched at last")
    await daemon.wait_until(lambda: answers(daemon.url("/readyz")), 10, "/readyz 200")
    again = run_cli(daemon.env, "retry", key, cwd=tmp_path)
    assert again.returncode == 1 and f"not a file given up on: {key}" in again.stderr


async def given_up_in_readyz(daemon: Running) -> bool:
    got = await http_get(daemon.url("/readyz"))
    return got is not None and any(
        "given up on" in problem for problem in json.loads(got[1])["problems"]
    )

"""`umbrellabot run` end to end, as a user runs it: the daemon in a subprocess against moto's
server (S3 and Athena) and the fake Slack (tests/fake_slack.py, served from the test's event
loop), or against the sample data in examples/ (local mode: no bucket, no Slack).

Nothing inside the daemon is patched: what is checked is what a user sees — messages in Slack,
answers in threads, /healthz /readyz /metrics, the log lines on stderr, the alert table on
stdout, exit codes and how long a shutdown takes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from conftest import REPO_ROOT
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
from fake_slack import APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack, Posted, mention

pytestmark = pytest.mark.timeout(120)

EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_CREATE_USER = "7f3c2a10-0003-4e5b-9a61-0c1d2e3f0003"  # iam:CreateUser in examples/
POLL_INTERVAL_S = 1
ALERTS = "CALERTS01"  # SLACK_CHANNEL
STARTUP_S = 30.0


# S3 and Slack


def slack_env(
    aws_env: dict[str, str], fake: FakeSlack, bucket: str, state: Path, **extra: str
) -> dict[str, str]:
    settings = {
        "CLOUDTRAIL_BUCKET_NAME": bucket,
        "STATE_DIR": str(state),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": fake.api_url,
        "SLACK_CHANNEL": ALERTS,
        "SLACK_POST_INTERVAL_S": "0.05",
        "POLL_INTERVAL": str(POLL_INTERVAL_S),
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "ENRICH_WORKERS": "1",
        "ALLOWED_COUNTRIES": "US",
    }
    return clean_env(**{**aws_env, **settings, **extra})


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def put_log(s3: Any, bucket: str, name: str, records: list[dict[str, Any]]) -> None:
    key = log_key(ACCOUNT_A, "us-east-1", today(), name)
    body = log_bytes(records)
    await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=body)


def new_create_user() -> tuple[str, dict[str, Any]]:
    event_id = str(uuid.uuid4())
    return event_id, {**create_user(event_id), "eventTime": now_text()}


def message_text(message: Posted) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def alerts_about(fake: FakeSlack, event_id: str) -> list[Posted]:
    return [m for m in fake.messages_in(ALERTS) if event_id in message_text(m)]


async def outbox_empty_in_metrics(daemon: Running) -> bool:
    got = await http_get(daemon.url("/metrics"))
    return got is not None and metric_samples(got[1]).get(("umbrellabot_outbox_depth", ())) == 0


async def test_s3_and_slack_end_to_end_then_restart(
    fake: FakeSlack,
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    state = tmp_path / "state"
    # With a bucket the query engine is Athena (moto's here, whose queries succeed with no
    # rows): the SQL detections run after every cycle, as they would for a user.
    env = slack_env(aws_env, fake, bucket, state)
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: answers(daemon.url("/healthz")), STARTUP_S, "/healthz")
    await daemon.wait_until(lambda: fake.connections >= 1, STARTUP_S, "Socket Mode connection")
    await daemon.wait_until(lambda: daemon.cycles_done() >= 1, STARTUP_S, "a first cycle")

    # a CloudTrail file arrives: its alert is in Slack within one cycle
    event_id, created = new_create_user()
    await put_log(s3, bucket, "first", [record(), created])
    dropped = time.monotonic()
    await daemon.wait_until(lambda: bool(alerts_about(fake, event_id)), 15, "the alert in Slack")
    latency = time.monotonic() - dropped
    [alert] = alerts_about(fake, event_id)
    assert alert.thread_ts is None
    assert "IAM user created" in message_text(alert) and "HIGH" in alert.text
    print(f"\nfirst alert in Slack {latency:.2f} s after the file was put")
    assert latency < POLL_INTERVAL_S + 10

    # @umbrellabot check out <eventID>: answered in the thread with the story
    asked = mention(f"<@{BOT_USER}> check out {event_id}")
    await fake.send_event(asked)
    await daemon.wait_until(
        lambda: len(fake.replies_to(asked["ts"])) >= 2, 15, "the answer in the thread"
    )
    looking, story = fake.replies_to(asked["ts"])[:2]
    assert "Looking up" in looking.text and event_id in looking.text
    story_text = message_text(story)
    for expected in (event_id, "iam-user-created", "IAM user created", "mallory", "alice"):
        assert expected in story_text, expected
    assert "found via the event index" in story_text

    # metrics (asked first: nothing else has looked at the Slack connection yet), health,
    # readiness
    await daemon.wait_until(
        lambda: outbox_empty_in_metrics(daemon), 10, "umbrellabot_outbox_depth 0"
    )
    metrics = await http_get(daemon.url("/metrics"))
    assert metrics is not None and metrics[0] == 200
    samples = metric_samples(metrics[1])
    assert samples[("umbrellabot_files_processed_total", ())] >= 1
    assert samples[("umbrellabot_records_total", ())] >= 2
    assert samples[("umbrellabot_alerts_total", (("severity", "high"),))] >= 1
    assert samples[("umbrellabot_cycles_total", (("outcome", "succeeded"),))] >= 2
    assert samples[("umbrellabot_cycle_duration_seconds_count", ())] >= 2
    assert samples[("umbrellabot_outbox_depth", ())] == 0
    assert samples[("umbrellabot_slack_connected", ())] == 1
    assert samples[("umbrellabot_file_failures_total", ())] == 0
    assert samples[("umbrellabot_last_cycle_success_timestamp_seconds", ())] > time.time() - 60
    for component in ("s3", "athena", "slack", "detections"):
        assert samples[("umbrellabot_errors_total", (("component", component),))] == 0
    healthz = await http_get(daemon.url("/healthz"))
    assert healthz is not None and healthz[0] == 200
    assert json.loads(healthz[1])["status"] == "alive"
    await daemon.wait_until(lambda: answers(daemon.url("/readyz")), 10, "/readyz 200")
    readyz = await http_get(daemon.url("/readyz"))
    assert readyz is not None and json.loads(readyz[1]) == {"ready": True, "problems": []}

    # SIGTERM: a clean exit, well within the 30 s budget
    code, took = await daemon.stop()
    print(f"SIGTERM to exit: {took:.2f} s")
    assert code == 0, daemon.stderr()
    assert took < 30
    messages = daemon.messages()  # every stderr line is one JSON object
    assert any(m.startswith("umbrellabot running: s3://" + bucket) for m in messages)
    assert any(m.startswith("Slack bot connected") for m in messages)
    assert messages[-1] == "umbrellabot stopped"
    assert not [e for e in daemon.log_entries() if e["level"] in ("error", "critical")]
    everything = daemon.stdout() + daemon.stderr()
    for secret in (BOT_TOKEN, APP_TOKEN, "xoxb-", "xapp-", aws_env["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in everything

    # a restart on the same state: the alert is not posted again, a new file's alert is
    later_id, later = new_create_user()
    await put_log(s3, bucket, "second", [later])
    again = launch({**env, "HEALTH_PORT": str(free_port())}, "run")
    await again.wait_until(lambda: fake.connections >= 2, STARTUP_S, "a second connection")
    await again.wait_until(lambda: again.cycles_done() >= 2, STARTUP_S, "two cycles")
    await again.wait_until(lambda: answers(again.url("/readyz")), 10, "/readyz 200")
    assert len(alerts_about(fake, later_id)) == 1
    assert len(alerts_about(fake, event_id)) == 1  # not twice
    assert len(fake.messages_in(ALERTS)) == 2
    code, took = await again.stop()
    print(f"SIGTERM to exit after the restart: {took:.2f} s")
    assert code == 0 and took < 30, again.stderr()


async def test_not_ready_when_s3_and_slack_refuse(
    fake: FakeSlack, aws_env: dict[str, str], tmp_path: Path, launch: Callable[..., Running]
) -> None:
    wrong_app_token = "xapp-1-A0000-0000-wrongwrongwrong"
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    env = slack_env(aws_env, fake, missing, tmp_path / "state", SLACK_APP_TOKEN=wrong_app_token)
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: answers(daemon.url("/healthz")), STARTUP_S, "/healthz")
    await daemon.wait_until(lambda: daemon.cycles_failed() >= 2, STARTUP_S, "two failed cycles")
    readyz = await http_get(daemon.url("/readyz"))
    assert readyz is not None and readyz[0] == 503
    problems = json.loads(readyz[1])["problems"]
    assert problems == [
        "Slack Socket Mode is not connected",
        f"no ingest cycle has succeeded yet (last error: bucket {missing!r} does not exist"
        " (CLOUDTRAIL_BUCKET_NAME))",
    ]
    metrics = await http_get(daemon.url("/metrics"))
    assert metrics is not None
    samples = metric_samples(metrics[1])
    assert samples[("umbrellabot_errors_total", (("component", "s3"),))] >= 2
    assert samples[("umbrellabot_errors_total", (("component", "slack"),))] == 1
    assert samples[("umbrellabot_slack_connected", ())] == 0
    assert samples[("umbrellabot_cycles_total", (("outcome", "failed"),))] >= 2
    assert fake.connections == 0
    code, took = await daemon.stop()
    assert code == 0 and took < 30, daemon.stderr()
    errors = [e["message"] for e in daemon.log_entries() if e["level"] == "error"]
    assert "Slack bot not started: Slack refused SLACK_APP_TOKEN: invalid_auth" in errors
    assert f"cycle failed: bucket {missing!r} does not exist (CLOUDTRAIL_BUCKET_NAME)" in errors
    everything = daemon.stdout() + daemon.stderr()
    assert wrong_app_token not in everything and BOT_TOKEN not in everything


# settings


@pytest.mark.parametrize(
    ("name", "value"),
    [("POLL_INTERVAL", "abc"), ("SCHEDULE", "nonsense"), ("HEALTH_PORT", "70000")],
)
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path, name: str, value: str) -> None:
    good = {"CLOUDTRAIL_LOCAL_PATH": str(EXAMPLES), "STATE_DIR": str(tmp_path / "state")}
    env = clean_env(**{**good, "HEALTH_PORT": str(free_port()), name: value})
    done = run_cli(env, "run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"umbrellabot: invalid setting {name} from the environment: ")
    assert not (tmp_path / "state").exists()  # nothing started


def test_a_health_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = local_env(tmp_path, HEALTH_PORT=str(port))
        done = run_cli(env, "run", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"umbrellabot: HEALTH_PORT: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in line.lower() and line.endswith("or HEALTH_PORT=0 for none)")


# local mode


def local_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Local mode: no bucket, no Slack."""
    settings = {
        "CLOUDTRAIL_LOCAL_PATH": str(EXAMPLES),
        "ENRICHED_LOCAL_PATH": str(tmp_path / "enriched"),
        "STATE_DIR": str(tmp_path / "state"),
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(free_port()),
        "POLL_INTERVAL": str(POLL_INTERVAL_S),
        "LOG_FORMAT": "json",
        "ENRICH_WORKERS": "1",
        "ALLOWED_COUNTRIES": "US",
    }
    return clean_env(**{**settings, **extra})


async def test_local_mode_end_to_end_on_the_sample_data(
    tmp_path: Path, launch: Callable[..., Running]
) -> None:
    env = local_env(tmp_path)
    daemon = launch(env, "run")
    await daemon.wait_until(
        lambda: EXAMPLE_CREATE_USER in daemon.stdout(), STARTUP_S, "alerts on stdout"
    )
    await daemon.wait_until(lambda: answers(daemon.url("/readyz")), 10, "/readyz 200")
    printed = daemon.stdout()
    assert "Alerts: 24 on 14 events" in printed
    for expected in ("iam-user-created", "root-console-login", "cloudtrail-logging-stopped"):
        assert expected in printed
    enriched = sorted(
        p.relative_to(tmp_path / "enriched") for p in (tmp_path / "enriched").rglob("*")
    )
    written = [str(p) for p in enriched if p.name.endswith(".json.gz")]
    assert len(written) == 3, enriched
    assert all(p.startswith("AWSLogs/111122223333/CloudTrail/") for p in written)

    # `show` beside the running daemon (the same state and enriched folder)
    shown = run_cli(env, "show", EXAMPLE_CREATE_USER, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for expected in (EXAMPLE_CREATE_USER, "CreateUser", "iam-user-created", "IAM user created"):
        assert expected in shown.stdout, expected
    assert "found via the event index" in shown.stdout

    # the Docker HEALTHCHECK command
    healthy = run_cli(env, "healthcheck", cwd=tmp_path)
    assert healthy.returncode == 0 and healthy.stdout == healthy.stderr == ""

    await daemon.wait_until(lambda: daemon.cycles_done() >= 2, 10, "a second cycle")
    code, took = await daemon.stop()
    assert code == 0, daemon.stderr()
    assert took < 30
    gone = run_cli(env, "healthcheck", cwd=tmp_path)
    assert gone.returncode == 1
    assert gone.stderr == f"umbrellabot: no healthy answer from {daemon.url('/healthz')}\n"
    assert daemon.stdout().count(EXAMPLE_CREATE_USER) == 1  # the next cycles found nothing new
    messages = daemon.messages()
    assert messages[0] == f"umbrellabot running: folder {EXAMPLES}, every {POLL_INTERVAL_S}s"
    assert messages[-1] == "umbrellabot stopped"


def test_local_mode_run_once(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    done = run_cli(env, "run", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Alerts: 24 on 14 events" in done.stdout and EXAMPLE_CREATE_USER in done.stdout
    assert "3 processed" in done.stdout
    again = run_cli(env, "run", "--once", cwd=tmp_path)
    assert again.returncode == 0 and "0 processed" in again.stdout
    assert EXAMPLE_CREATE_USER not in again.stdout


# shutdown in the middle of a cycle


def write_log(folder: Path, name: str, body: bytes) -> str:
    key = log_key(ACCOUNT_A, "us-east-1", today(), name)
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return key


@pytest.fixture(scope="module")
def big_log() -> bytes:
    """A log file that takes a worker a few seconds to enrich (built once)."""
    return log_bytes([record(event_id=f"big-{n}") for n in range(250_000)])


def small_first(folder: Path, big: bytes, copies: int) -> list[str]:
    """A small file (processed first), then `copies` of `big`."""
    keys = [write_log(folder, "a-small", log_bytes([record() for _ in range(10)]))]
    keys += [write_log(folder, f"b-big{n:02d}", big) for n in range(copies)]
    return keys


def done_files(state: Path) -> int:
    return state_count(state, "SELECT count(*) FROM files WHERE status='done'")


def second_in_flight(state: Path) -> bool:
    """The small file done and the next one (the cycle's file 1) downloaded into the work
    folder: in flight, so a signal now finds it there (a positive signal, not a guess)."""
    return done_files(state) >= 1 and any(state.glob("work/*/1.in"))


async def group_gone(running: Running, timeout: float = 10) -> bool:
    """No process of the daemon's group is left (the enrichment workers included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(running.process.pid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_sigterm_mid_cycle_finishes_the_file_in_flight_then_a_restart_the_rest(
    tmp_path: Path, launch: Callable[..., Running]
) -> None:
    trail = tmp_path / "trail"
    medium = log_bytes([record(event_id=f"medium-{n}") for n in range(40_000)])
    keys = small_first(trail, medium, 3)
    state = tmp_path / "state"
    env = local_env(tmp_path, CLOUDTRAIL_LOCAL_PATH=str(trail), S3_CONCURRENCY="1")
    first = launch(env, "run")
    await first.wait_until(lambda: second_in_flight(state), STARTUP_S, "the next file in flight")
    code, took = await first.stop()  # a big one is in flight
    print(f"\nSIGTERM mid-cycle to exit: {took:.2f} s")
    assert code == 0, first.stderr()
    assert took < 30
    assert await group_gone(first)
    messages = first.messages()
    assert "SIGTERM: finishing the files in flight, then exiting" in messages
    assert messages[-1] == "umbrellabot stopped"
    assert done_files(state) == 2  # the one in flight was finished, no other one started
    assert len(list((tmp_path / "enriched").rglob("*.json.gz"))) == 2
    assert not [e for e in first.log_entries() if e["level"] in ("error", "critical")]

    again = launch({**env, "HEALTH_PORT": str(free_port())}, "run")
    await again.wait_until(lambda: done_files(state) == len(keys), 60, "every file done")
    code, _ = await again.stop()
    assert code == 0, again.stderr()
    assert len(list((tmp_path / "enriched").rglob("*.json.gz"))) == len(keys)


@pytest.mark.parametrize("workers", ["1", "0"], ids=["worker-process", "one-thread"])
async def test_ctrl_c_in_a_terminal_stops_cleanly(
    tmp_path: Path, launch: Callable[..., Running], workers: str
) -> None:
    trail = tmp_path / "trail"
    small_first(trail, log_bytes([record(event_id=f"medium-{n}") for n in range(40_000)]), 2)
    state = tmp_path / "state"
    env = local_env(
        tmp_path, CLOUDTRAIL_LOCAL_PATH=str(trail), S3_CONCURRENCY="1", ENRICH_WORKERS=workers
    )
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: second_in_flight(state), STARTUP_S, "the next file in flight")
    os.killpg(daemon.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    code = await daemon.exited(30)
    assert "SIGINT: finishing the files in flight, then exiting" in daemon.messages()
    assert code == 0, daemon.stderr()
    assert done_files(state) == 2


async def test_shutdown_timeout_cuts_a_long_file_short(
    tmp_path: Path, big_log: bytes, launch: Callable[..., Running]
) -> None:
    trail = tmp_path / "trail"
    keys = small_first(trail, big_log, 1)
    state = tmp_path / "state"
    budget = 1.0
    env = local_env(
        tmp_path,
        CLOUDTRAIL_LOCAL_PATH=str(trail),
        S3_CONCURRENCY="1",
        SHUTDOWN_TIMEOUT_S=str(budget),
    )
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: second_in_flight(state), STARTUP_S, "the next file in flight")
    code, took = await daemon.stop()  # the big one is in flight, longer than the budget
    print(f"\nSIGTERM with SHUTDOWN_TIMEOUT_S={budget:.0f} to exit: {took:.2f} s")
    assert code == 0, daemon.stderr()
    assert took < budget + 1
    assert await group_gone(daemon)
    assert done_files(state) == 1  # cut short: not recorded, no output
    assert len(list((tmp_path / "enriched").rglob("*.json.gz"))) == 1
    assert "cycle abandoned at shutdown; unfinished files are done next time" in daemon.messages()
    assert not [e for e in daemon.log_entries() if e["level"] in ("error", "critical")]

    again = launch({**env, "HEALTH_PORT": str(free_port())}, "run")
    await again.wait_until(lambda: done_files(state) == len(keys), 60, "the big file done")
    code, _ = await again.stop()
    assert code == 0, again.stderr()


async def test_a_second_signal_exits_at_once(
    tmp_path: Path, big_log: bytes, launch: Callable[..., Running]
) -> None:
    trail = tmp_path / "trail"
    small_first(trail, big_log, 1)
    state = tmp_path / "state"
    env = local_env(tmp_path, CLOUDTRAIL_LOCAL_PATH=str(trail), S3_CONCURRENCY="1")
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: second_in_flight(state), STARTUP_S, "the next file in flight")
    daemon.process.send_signal(signal.SIGTERM)  # the big one is in flight
    await daemon.wait_until(
        lambda: "SIGTERM: finishing the files in flight, then exiting" in daemon.messages(False),
        10,
        "the first SIGTERM handled",
    )
    code, took = await daemon.stop(signal.SIGTERM)
    print(f"\nsecond SIGTERM to exit: {took:.2f} s (code {code})")
    assert code == 128 + signal.SIGTERM
    assert took < 2
    # the hard exit leaves the pool's semaphores to multiprocessing's resource tracker, a
    # process of its own, which may say so on stderr in plain text
    assert daemon.messages(strict=False)[-1] == "second SIGTERM: exiting now"
    assert done_files(state) == 1  # the file in flight was not finished
    assert await group_gone(daemon)  # the worker did not outlive it


async def test_a_burst_of_alerts_does_not_hold_the_next_files_back(
    fake: FakeSlack,
    aws_env: dict[str, str],
    s3: Any,
    bucket: str,
    tmp_path: Path,
    launch: Callable[..., Running],
) -> None:
    """Delivery is its own task: 40 alerts paced at 4 a second take 10 s to post, and the file
    that arrives meanwhile is enriched (and counted) while they are still going out."""
    state = tmp_path / "state"
    env = slack_env(
        aws_env,
        fake,
        bucket,
        state,
        SLACK_POST_INTERVAL_S="0.25",
        SLACK_ROLLUP_THRESHOLD="1000",
        DETECTIONS_ENABLED="false",
    )
    burst = [new_create_user() for _ in range(40)]
    await put_log(s3, bucket, "burst", [created for _, created in burst])
    daemon = launch(env, "run")
    await daemon.wait_until(lambda: len(fake.messages_in(ALERTS)) >= 1, STARTUP_S, "posting")
    later_id, later = new_create_user()
    await put_log(s3, bucket, "later", [record(), later])
    done = "SELECT count(*) FROM files WHERE status = 'done'"
    await daemon.wait_until(lambda: state_count(state, done) == 2, 15, "the later file done")
    assert len(fake.messages_in(ALERTS)) < 40  # the burst is still going out meanwhile
    metrics = await http_get(daemon.url("/metrics"))
    assert metrics is not None
    assert metric_samples(metrics[1])[("umbrellabot_files_processed_total", ())] == 2
    await daemon.wait_until(lambda: bool(alerts_about(fake, later_id)), 30, "the later alert")
    await daemon.wait_until(lambda: len(fake.messages_in(ALERTS)) == 41, 30, "every alert")
    assert all(len(alerts_about(fake, event_id)) == 1 for event_id, _ in burst)
    code, _ = await daemon.stop()
    assert code == 0, daemon.stderr()

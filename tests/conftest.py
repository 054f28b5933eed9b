"""Shared fixtures. `shared_data` is the real CloudTrail data beside the project root
(`../shared/data`); it is read where it lies, never copied into the repo."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UMBRELLABOT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared test data not found at {SHARED_DATA}")
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set UMBRELLABOT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, shared by the session (each test uses its own bucket)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment that points botocore (ours and the CLI's) at moto's server."""
    env = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": moto_endpoint}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def moto_s3_backend() -> Any:
    """moto's in-process S3 store (the server runs in this process), for bulk test setup."""
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    return get_backend("s3")[DEFAULT_ACCOUNT_ID]["aws"]


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    """A plain boto3 S3 client on moto, for test setup and checks (not the code under test)."""
    import boto3

    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket on moto's shared server."""
    import uuid

    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def fake() -> AsyncIterator[Any]:
    """The fake Slack (Web API and Socket Mode) on 127.0.0.1."""
    from fake_slack import FakeSlack

    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start `umbrellabot <args>`; every process started is killed (its group) afterwards."""
    from daemon_harness import Running

    started: list[Running] = []

    def start(env: dict[str, str], *args: str, name: str | None = None) -> Running:
        name = name or f"run{len(started)}"
        running = Running(list(args or ("run",)), env, tmp_path, name)
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()


StateOpener = Callable[[], Any]  # a new handle on one state, as another process opens it
STATE_BACKENDS = ("sqlite", "dynamodb")


@pytest.fixture(params=STATE_BACKENDS)
def state_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateOpener]:
    """One state of each backend: SQLite in tmp_path, or a new DynamoDB table on moto's
    server (events indexed as INDEX_EVENTS=all). Each call opens another handle on it; all are
    closed after the test."""
    opened: list[Any] = []
    if request.param == "sqlite":
        from umbrellabot.storage.sqlite import SqliteState

        def make() -> Any:
            return SqliteState(tmp_path / "state")
    else:
        from umbrellabot.storage.dynamodb import connect, setup_table

        request.getfixturevalue("aws_env")
        name = f"state-{tmp_path.name}"

        def make() -> Any:
            return connect(name, region="us-east-1", retention_days=30, index_all_events=True)

        first = make()
        setup_table(first.table)
        opened.append(first)

    def open_one() -> Any:
        state = make()
        opened.append(state)
        return state

    yield open_one
    for state in opened:
        state.close()

"""umbrellabot as a subprocess, as a user runs it, and what a test reads of it: its output, its
JSON log lines, its health endpoints and metrics, and its state database (read-only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from umbrellabot.config import Settings

SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """The test's environment without any umbrellabot or AWS setting, plus `values`."""
    keep = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in SETTING_NAMES and not key.startswith(("AWS_", "UMBRELLABOT_"))
    }
    return {**keep, **values}


class Running:
    """One `umbrellabot <args>` process; stdout and stderr go to files (no pipe to fill)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, name: str) -> None:
        self.env = env
        self.port = int(env.get("HEALTH_PORT", "0"))
        self.stdout_path = cwd / f"{name}.stdout"
        self.stderr_path = cwd / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "umbrellabot", *args],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: killed as one in teardown
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_entries(self, strict: bool = True) -> list[dict[str, Any]]:
        """The JSON log lines on stderr; every line must be one JSON object (`strict`), else
        other lines are skipped."""
        entries = []
        for line in self.stderr().splitlines():
            if not strict and not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"a stderr line is not JSON: {line!r}\n{self.stderr()}")
            assert isinstance(entry, dict), line
            entries.append(entry)
        return entries

    def messages(self, strict: bool = True) -> list[str]:
        return [str(entry.get("message")) for entry in self.log_entries(strict)]

    def cycles_done(self) -> int:
        return sum(message.startswith("cycle done") for message in self.messages())

    def cycles_failed(self) -> int:
        return sum(message.startswith("cycle failed") for message in self.messages())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_until(
        self,
        condition: Callable[[], Awaitable[bool] | bool],
        timeout: float,
        what: str,
    ) -> float:
        """Poll `condition` until it holds; returns the seconds waited. Fails at once, with
        the process's output, when the process ends first."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return time.monotonic() - started
            if self.process.poll() is not None:
                pytest.fail(
                    f"umbrellabot exited ({self.process.returncode}) while waiting for {what}\n"
                    f"stdout:\n{self.stdout()}\nstderr:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:.0f} s\nstderr:\n{self.stderr()}")
            await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> tuple[int, float]:
        """Send `sig` to the daemon (not its group: as `docker stop` does); returns the exit
        code and the seconds it took to exit."""
        sent = time.monotonic()
        self.process.send_signal(sig)
        code = await self.exited(timeout)
        return code, time.monotonic() - sent

    async def exited(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"umbrellabot did not exit within {timeout:.0f} s\n{self.stderr()}")
            await asyncio.sleep(0.02)
        return int(self.process.returncode)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "umbrellabot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def http_get(url: str) -> tuple[int, str] | None:
    """(status, body), or None when nothing answers yet."""
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            return response.status, await response.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def answers(url: str, status: int = 200) -> bool:
    got = await http_get(url)
    return got is not None and got[0] == status


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def state_count(state: Path, sql: str) -> int:
    database = state / "umbrellabot.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def run_cli_at(
    offset: str, env: dict[str, str], *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`umbrellabot <args>` with its clock moved by `offset` (faketime's `+7h`, `+5d`): an
    outage or a silence, as the process lives it. faketime is the Debian package
    (`.ci/run` installs it)."""
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime is not installed: apt-get install faketime")
    return subprocess.run(
        [faketime, "-f", offset, sys.executable, "-m", "umbrellabot", *args],
        env={**env, "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

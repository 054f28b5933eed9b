"""The env file as a newcomer writes it: the README's own `cp .env.example .env`, a binary file,
a misspelled key, a junk line, no region. Each is one line and exit 2, never a traceback or a
setting silently ignored."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from umbrellabot import cli
from umbrellabot.config import SettingsError, load_settings, setting_names
from umbrellabot.env_check import near_miss


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`umbrellabot …` as a user runs it: a new process, an environment without AWS or Slack
    values (HOME empty, so no ~/.aws config gives a region)."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SLACK_", "CLOUDTRAIL_", "UMBRELLABOT_"))
    }
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "umbrellabot", *args],
        cwd=cwd,
        env={**base, "HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_readme_setup_step_says_what_to_fill_in(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / ".env.example", tmp_path / ".env")
    line = one_line(run_cli(tmp_path, "run", "--once"))
    assert line == (
        "umbrellabot: fill in CLOUDTRAIL_BUCKET_NAME in .env (it still holds the example's"
        " my-cloudtrail-bucket)"
    )


def test_a_filled_in_example_without_a_region_names_the_variable(tmp_path: Path) -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    text = text.replace("my-cloudtrail-bucket", "acme-trail")
    kept = [line for line in text.splitlines() if not line.startswith("SLACK_")]
    (tmp_path / ".env").write_text("\n".join(kept) + "\n")
    line = one_line(run_cli(tmp_path, "run", "--once"))
    assert line.startswith("umbrellabot: no AWS region: set AWS_REGION")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", ".env is not a text file"),
        ("CLOUDTRAIL_BUCKET_NAME=b\nPOLL=\xe9t\xe9\n".encode("latin-1"), ".env is not UTF-8 text"),
        (
            b"POLL_INTRVAL=30\n",
            "unknown setting POLL_INTRVAL in .env \u2014 did you mean POLL_INTERVAL?",
        ),
        (b"STATE_DIR=state\nthis is not a setting\n", "line 2 of .env is not KEY=VALUE"),
        (b"UMBRELLABOT_MODE=fast\n", "unknown setting UMBRELLABOT_MODE in .env"),
        (b"SLACK_BOT_TOKEN=xoxb-your-bot-token\n", "fill in SLACK_BOT_TOKEN in .env"),
    ],
    ids=["binary", "not-utf8", "near-miss", "junk-line", "prefixed", "placeholder-token"],
)
def test_a_bad_env_file_is_one_line_and_exit_2(
    content: bytes,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UMBRELLABOT_ENV_FILE", raising=False)
    (tmp_path / ".env").write_bytes(content)
    assert cli.main(["rules", "check"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_other_programs_keys_are_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UMBRELLABOT_ENV_FILE", raising=False)
    (tmp_path / ".env").write_text(
        "# comment\n\nexport POLL_INTERVAL=30\nAWS_PROFILE=audit\nAWS_DEFAULT_REGION=eu-west-1\n"
        "COMPOSE_PROJECT_NAME=ub\nTZ=UTC\nHTTPS_PROXY=http://proxy:3128\nINDEX_RETENTION_DAYS=30\n"
        "MY_OWN_THING=1\n"
    )
    settings = load_settings()
    assert settings.poll_interval == 30 and settings.state_retention_days == 30


def test_a_near_miss_in_the_environment_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_CHANNELS", "C1")
    monkeypatch.setenv("UMBRELLABOT_SOMETHING_ELSE", "1")  # the environment is shared: fine
    with caplog.at_level(logging.WARNING):
        load_settings()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "unknown setting SLACK_CHANNELS in the environment \u2014 did you mean SLACK_CHANNEL?"
        " (ignored)"
    ]


def test_every_setting_is_known_and_near_misses_are_found() -> None:
    names = setting_names()
    assert {"POLL_INTERVAL", "INDEX_RETENTION_DAYS", "UMBRELLABOT_ENV_FILE"} <= names
    for typo, meant in (("POLL_INTRVAL", "POLL_INTERVAL"), ("SLACK_CHANEL", "SLACK_CHANNEL")):
        assert near_miss(typo, names) == meant
    for unrelated in ("HOSTNAME", "PATH", "HOME", "LANG", "SHLVL", "PWD"):
        assert near_miss(unrelated, names) is None


def test_placeholders_in_the_environment_are_named_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDTRAIL_BUCKET_NAME", "my-cloudtrail-bucket")
    with pytest.raises(SettingsError, match="fill in CLOUDTRAIL_BUCKET_NAME in the environment"):
        load_settings()

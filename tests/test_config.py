"""Settings: environment, env file, precedence and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from umbrellabot.config import SettingsError, load_settings
from umbrellabot.model.severity import Severity

SETTING_NAMES = (
    "CLOUDTRAIL_BUCKET_NAME",
    "CLOUDTRAIL_INITIAL_PREFIX",
    "CLOUDTRAIL_PROCESSED_PREFIX",
    "ATHENA_RESULTS_PREFIX",
    "SLACK_CHANNEL",
    "RULES_PATH",
    "ALLOWED_COUNTRIES",
    "ALERT_MIN_SEVERITY",
    "IPSTACK_ACCESS_KEY",
    "STATE_DIR",
    "UMBRELLABOT_ENV_FILE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_keep_the_original_names() -> None:
    settings = load_settings()
    assert settings.cloudtrail_bucket_name is None
    assert settings.cloudtrail_processed_prefix == "processed/"
    assert settings.allowed_countries == ["US"]
    assert settings.alert_min_severity is Severity.HIGH
    assert settings.rules_path == []
    assert settings.ipstack_access_key is None


def test_environment_lists_and_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_COUNTRIES", "us, gb ca")
    monkeypatch.setenv("RULES_PATH", f"a.yaml,rules{os.pathsep}more")
    monkeypatch.setenv("ALERT_MIN_SEVERITY", "Medium")
    settings = load_settings()
    assert settings.allowed_countries == ["US", "GB", "CA"]
    assert settings.rules_path == [Path("a.yaml"), Path("rules"), Path("more")]
    assert settings.alert_min_severity is Severity.MEDIUM


def test_env_file_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CLOUDTRAIL_BUCKET_NAME=from-dotenv\nSLACK_CHANNEL=C1\n")
    assert load_settings().cloudtrail_bucket_name == "from-dotenv"
    monkeypatch.setenv("CLOUDTRAIL_BUCKET_NAME", "from-env")
    settings = load_settings()
    assert settings.cloudtrail_bucket_name == "from-env"  # the environment wins
    assert settings.slack_channel == "C1"
    named = tmp_path / "prod.env"
    named.write_text("SLACK_CHANNEL=C2\n")
    monkeypatch.setenv("UMBRELLABOT_ENV_FILE", str(named))
    assert load_settings().slack_channel == "C2"


def test_errors_name_the_variable_and_its_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALLOWED_COUNTRIES", "USA")
    with pytest.raises(SettingsError, match=r"ALLOWED_COUNTRIES from the environment.*'USA'"):
        load_settings()
    monkeypatch.delenv("ALLOWED_COUNTRIES")
    (tmp_path / ".env").write_text("ALERT_MIN_SEVERITY=urgent\n")
    with pytest.raises(SettingsError, match=r"ALERT_MIN_SEVERITY from \.env: unknown severity"):
        load_settings()
    monkeypatch.setenv("UMBRELLABOT_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError, match="UMBRELLABOT_ENV_FILE: no such env file"):
        load_settings()


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSTACK_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("IPSTACK_MAX_CALLS", "-1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "IPSTACK_MAX_CALLS" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    monkeypatch.delenv("IPSTACK_MAX_CALLS")
    assert "s3cr3t" not in repr(load_settings())


def test_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ALLOWED_COUNTRIES": "Germany"}
    done = subprocess.run(
        [sys.executable, "-m", "umbrellabot", "rules", "list"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("umbrellabot: invalid setting ALLOWED_COUNTRIES")
    assert "Traceback" not in done.stderr


def test_state_retention_days_keeps_its_old_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("INDEX_RETENTION_DAYS", "30")
    assert load_settings().state_retention_days == 30
    monkeypatch.setenv("STATE_RETENTION_DAYS", "10")  # the new name wins
    assert load_settings().state_retention_days == 10

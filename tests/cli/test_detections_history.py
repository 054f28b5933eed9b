"""`detections run --since D [--until D]`: every window of a historical range, over the sample
data and the shared real data; a data folder or table that does not exist is an error, not
"0 findings"; `--post` delivers each finding once."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO_ROOT

from umbrellabot import cli


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("UMBRELLABOT_ENV_FILE", "CLOUDTRAIL_BUCKET_NAME", "DETECTIONS_PATH", "STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def scanned(source: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["scan", str(source), "--out", str(out), "--no-progress"]) == cli.EXIT_OK
    monkeypatch.setenv("ENRICHED_LOCAL_PATH", str(out))


def test_the_sample_data_has_a_finding_in_its_day(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scanned(REPO_ROOT / "examples", here / "out", monkeypatch)
    capsys.readouterr()
    assert cli.main(["detections", "run"]) == cli.EXIT_OK  # the last hour: nothing that old
    assert ": 0 findings, 0 failed" in capsys.readouterr().out
    args = ["detections", "run", "--since", "2026-11-29", "--until", "2026-11-29"]
    assert cli.main(args) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "console-login-failures [high] source_ip=81.2.69.142" in out
    assert "from 2026-11-29 to 2026-11-29: 1 findings, 0 failed" in out


def test_the_shared_real_data_has_findings(
    here: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scanned(shared_data / "cloudtrail" / "s3-layout", here / "real", monkeypatch)
    capsys.readouterr()
    assert cli.main(["detections", "run", "--since", "2023-07-10", "--until", "2023-07-10"]) == 0
    out = capsys.readouterr().out
    assert "mass-deletion [high] principal_arn=arn:aws:iam::123837392027:user/bert-jan" in out
    assert "secrets-bulk-read [high]" in out


def test_posting_delivers_each_finding_once(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scanned(REPO_ROOT / "examples", here / "out", monkeypatch)
    args = ["detections", "run", "--since", "2026-11-29", "--until", "2026-11-29", "--post"]
    capsys.readouterr()
    assert cli.main(args) == cli.EXIT_OK
    first = capsys.readouterr().out
    assert "1 new alerts (the others were told before), 1 delivered" in first
    assert "console-login-failures" in first.split("1 findings")[1]  # the alert table
    assert cli.main(args) == cli.EXIT_OK
    assert "0 new alerts (the others were told before), 0 delivered" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "2026-11-29"], "--until needs --since"),
        (["--since", "2026-11-29", "--until", "2026-11-01"], "--until 2026-11-01 is before"),
    ],
)
def test_a_bad_range_is_exit_2(
    here: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "enriched").mkdir()
    assert cli.main(["detections", "run", *args]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_missing_data_folder_is_exit_2(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENRICHED_LOCAL_PATH", str(here / "nope"))
    assert cli.main(["detections", "run", "--since", "2026-11-29"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"ENRICHED_LOCAL_PATH {here / 'nope'} does not exist" in err


def test_a_missing_athena_table_is_exit_3(
    here: Path,
    aws_env: dict[str, str],
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOUDTRAIL_BUCKET_NAME", bucket)
    monkeypatch.setenv("ATHENA_DATABASE", "nowhere_db")
    assert cli.main(["detections", "run", "--since", "2026-11-29"]) == cli.EXIT_CANNOT_RUN
    err = capsys.readouterr().err
    assert "the Athena table nowhere_db.cloudtrail_enriched does not exist" in err
    assert "umbrellabot athena setup" in err and err.count("\n") == 1

"""`scan` and `show` meet: scan's summary prints the `show … --from DIR` command to use, that
command finds the event (any day, any layout), and a miss names where and which days it looked."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from umbrellabot import cli


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("UMBRELLABOT_ENV_FILE", "CLOUDTRAIL_BUCKET_NAME", "RULES_PATH", "STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_the_show_command_scan_prints_finds_the_event(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["scan", str(REPO_ROOT / "examples"), "--out", "out", "--no-progress"]) == 0
    out = capsys.readouterr().out
    [command] = re.findall(r"umbrellabot show (\S+) --from out", out)
    assert cli.main(["show", command, "--from", "out"]) == cli.EXIT_OK
    shown = capsys.readouterr().out
    assert command in shown and "found via a search of the folder" in shown
    assert cli.main(["show", command, "--from", "out", "--json"]) == cli.EXIT_OK
    assert f'"eventID": "{command}"' in capsys.readouterr().out


def test_flat_files_scanned_from_anywhere_are_found_too(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = next((REPO_ROOT / "examples").rglob("*_am.json.gz"))
    shutil.copy(source, here / "flat.json.gz")  # no S3 layout, no day folder
    assert cli.main(["scan", "flat.json.gz", "--out", "flat-out", "--no-progress"]) == 0
    [event_id] = re.findall(r"umbrellabot show (\S+) --from flat-out", capsys.readouterr().out)
    assert cli.main(["show", event_id, "--from", "flat-out"]) == cli.EXIT_OK


def test_a_miss_names_the_places_and_the_days(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    assert cli.main(["show", missing]) == cli.EXIT_FAILED
    err = " ".join(capsys.readouterr().err.split())
    assert f"no event {missing} in the enriched files in enriched from " in err
    assert "(EVENT_LOOKUP_DAYS=90)" in err and "show EVENT_ID --from DIR" in err
    (here / "empty").mkdir()
    assert cli.main(["show", missing, "--from", "empty"]) == cli.EXIT_FAILED
    assert "in any enriched file under empty (every day)" in capsys.readouterr().err
    assert cli.main(["show", missing, "--from", "nope"]) == cli.EXIT_USAGE
    assert "show --from: no such folder: nope" in capsys.readouterr().err

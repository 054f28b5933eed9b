"""The smaller things a new user hits in the first hour: local mode's words, an unknown country
code, invisible characters, log text in the bot's reply, and the log lines of a quiet cycle."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from umbrellabot import cli
from umbrellabot.app.logs import SkippedTickFilter
from umbrellabot.query.story import build_story
from umbrellabot.slack import story_reply
from umbrellabot.slack.text import escape


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("UMBRELLABOT_ENV_FILE", "CLOUDTRAIL_BUCKET_NAME", "ALLOWED_COUNTRIES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_local_mode_speaks_of_a_folder_not_of_s3(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOUDTRAIL_LOCAL_PATH", str(REPO_ROOT / "examples"))
    monkeypatch.setenv("STATE_DIR", str(here / "state"))
    assert cli.main(["run", "--once"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"Cycle over folder {REPO_ROOT / 'examples'}:" in out
    assert "Folder work: 2 file listings, 3 files read, 3 files written, 4 folder listings" in out
    assert "s3://" not in out and "ListFolders" not in out and "Requests:" not in out


def test_a_country_code_iso_3166_lacks_is_refused(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALLOWED_COUNTRIES", "us,zz")
    assert cli.main(["rules", "check"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid setting ALLOWED_COUNTRIES" in err and "'ZZ' is not an ISO-3166" in err
    monkeypatch.setenv("ALLOWED_COUNTRIES", "us,gb,de")
    assert cli.main(["rules", "check"]) == cli.EXIT_OK


def test_zero_width_characters_never_reach_slack() -> None:
    assert escape("ad\u200bmin\u200d\u2060\ufeff\u200e") == "admin"


def test_log_text_in_the_bots_reply_is_in_code_spans() -> None:
    record = {
        "eventID": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "eventName": "GetObject",
        "eventSource": "s3.amazonaws.com",
        "userAgent": "*bold* _it_ ~gone~",
        "sourceIPAddress": "203.0.113.7",
        "userIdentity": {"type": "IAMUser", "userName": "*alice*"},
    }
    message = story_reply.event_story(build_story(record, []), via="index")
    fields = {
        item["text"].split("*\n", 1)[0].strip("*"): item["text"].split("*\n", 1)[1]
        for block in message.blocks
        for item in block.get("fields", [])
    }
    assert fields["User agent"] == "`*bold* _it_ ~gone~`"
    assert fields["Who"].startswith("`") and fields["Source"] == "`203.0.113.7`"


def test_a_skipped_tick_is_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord(
        "apscheduler.scheduler",
        logging.WARNING,
        __file__,
        1,
        'Execution of job "cycle" skipped: maximum number of running instances reached (1)',
        None,
        None,
    )
    tick = SkippedTickFilter()
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        assert tick.filter(record) is False  # not shown at INFO
        root.setLevel(logging.DEBUG)
        assert tick.filter(record) is True and record.levelname == "DEBUG"
    finally:
        root.setLevel(level)

"""Accounts by name: ACCOUNT_NAMES makes alerts, the bot's replies and `show` say
"prod-payments (111111111111)" instead of twelve digits."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import ACCOUNT_A, ACCOUNT_B, create_user
from rich.console import Console

from umbrellabot import cli
from umbrellabot.app.render import event_story
from umbrellabot.config import Settings
from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.accounts import account_label, parse_account_names
from umbrellabot.model.records import Event
from umbrellabot.query.story import build_story
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.slack import story_reply
from umbrellabot.slack.triage_messages import triaged_alert_message

NAMES = {ACCOUNT_A: "prod-payments"}
RECORD = {**create_user(), "recipientAccountId": ACCOUNT_A}


def test_names_parse_and_label() -> None:
    assert parse_account_names(f" {ACCOUNT_A}=prod-payments, {ACCOUNT_B}=dev ") == {
        ACCOUNT_A: "prod-payments",
        ACCOUNT_B: "dev",
    }
    assert account_label(ACCOUNT_A, NAMES) == f"prod-payments ({ACCOUNT_A})"
    assert account_label(ACCOUNT_B, NAMES) == ACCOUNT_B and account_label(None, NAMES) is None
    for bad in ("12=prod", f"{ACCOUNT_A}=", f"{ACCOUNT_A}=<!channel>"):
        with pytest.raises(ValueError, match="ACCOUNT_ID=name pairs"):
            parse_account_names(bad)


def test_a_bad_setting_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCOUNT_NAMES", "prod=111")
    assert cli.main(["rules", "check"]) == cli.EXIT_USAGE
    assert "invalid setting ACCOUNT_NAMES from the environment" in capsys.readouterr().err
    monkeypatch.setenv("ACCOUNT_NAMES", f"{ACCOUNT_A}=prod-payments")
    settings = Settings()
    assert settings.account_names == NAMES


def test_alerts_replies_and_show_say_the_name() -> None:
    [rule] = [
        r
        for r in load_rules([default_rules_path()], {"allowed_countries": ["US"]})
        if r.id == "iam-user-created"
    ]
    message = triaged_alert_message(alert_for(Event(RECORD), rule), 7, names=NAMES)
    assert f"account `prod-payments ({ACCOUNT_A})`" in str(message.blocks)
    story = build_story(RECORD, [rule])
    reply = story_reply.event_story(story, via="index", names=NAMES)
    assert f"`prod-payments ({ACCOUNT_A})`" in str(reply.blocks)
    console = Console(width=160, color_system=None, record=True)
    console.print(event_story(story, names=NAMES, full_record=False))
    assert f"account prod-payments ({ACCOUNT_A})" in console.export_text()

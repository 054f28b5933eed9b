"""Routes: ordered, first match wins, by severity, rule id or glob, tag, account and region; a
rule's own channel after them, SLACK_CHANNEL last; the file checked like the rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from builders import ACCOUNT_A, ACCOUNT_B, create_user
from fake_slack import BOT_TOKEN, FakeSlack

from umbrellabot.app.delivery import flush_outbox
from umbrellabot.app.wiring import slack_notifier
from umbrellabot.config import Settings
from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.slack.client import slack_client
from umbrellabot.slack.routing import Router, RoutingError, load_routes
from umbrellabot.storage.sqlite import SqliteState

ROUTES = """\
routes:
  - channel: C0CRIT0001
    min_severity: critical
    account: ["111111111111"]
  - channel: "#identity"
    rule: ["iam-*"]
    region: [us-east-1]
  - channel: "#network"
    tag: ec2
  - channel: "#lows"
    severity: [low, info]
"""
RULES = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
BY_ID = {rule.id: rule for rule in RULES}


def an_alert(rule_id: str, **changes: Any) -> Any:
    record = {**create_user(), "recipientAccountId": ACCOUNT_B, "awsRegion": "eu-west-1"}
    return replace(alert_for(Event(record), BY_ID[rule_id]), **changes)


@pytest.fixture
def router(tmp_path: Path) -> Router:
    path = tmp_path / "routing.yaml"
    path.write_text(ROUTES)
    return Router(
        load_routes(path),
        "CDEFAULT01",
        rule_tags={rule.id: rule.tags for rule in RULES},
        rule_channels={"access-denied": "#denied"},
    )


def test_first_match_wins_then_the_rules_channel_then_the_default(router: Router) -> None:
    critical = an_alert("root-console-login", severity=Severity.CRITICAL, account=ACCOUNT_A)
    assert router.channel_for(critical) == "C0CRIT0001"
    assert router.channel_for(replace(critical, account=ACCOUNT_B)) != "C0CRIT0001"
    iam = an_alert("iam-user-created")
    assert router.channel_for(iam) == "CDEFAULT01"  # eu-west-1: not the identity route
    assert router.channel_for(replace(iam, region="us-east-1")) == "#identity"
    assert "ec2" in BY_ID["security-group-changed"].tags
    assert router.channel_for(an_alert("security-group-changed")) == "#network"
    assert router.channel_for(an_alert("iam-user-created", severity=Severity.LOW)) == "#lows"
    assert router.channel_for(an_alert("access-denied", severity=Severity.HIGH)) == "#denied"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes:\n  - {channel: 'not a channel!'}\n", "route #1: channel: expected a channel"),
        ("routes:\n  - {channel: C0A1B2C3D, sevrity: high}\n", "route #1: sevrity: unknown key"),
        ("routes:\n  - {channel: C0A1B2C3D, min_severity: urgent}\n", "route #1: min_severity:"),
        ("routes:\n  - {channel: C0A1B2C3D, account: []}\n", "route #1: account: expected text"),
        ("routes: {channel: C0A1B2C3D}\n", "expected a mapping with a routes: list"),
        ("routes: [\n", "invalid YAML"),
    ],
)
def test_a_bad_route_names_file_route_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    with pytest.raises(RoutingError) as caught:
        load_routes(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("routes:\n  - {channel: '!'}\n  - {channel: C0A1B2C3D}\n  - {tag: x}\n")
    with pytest.raises(RoutingError) as caught:
        load_routes(path)
    assert [p.split(": ")[1] for p in caught.value.problems] == ["route #1", "route #3"]


def test_the_example_file_loads() -> None:
    from conftest import REPO_ROOT

    assert len(load_routes(REPO_ROOT / "config" / "routing.example.yaml")) == 4


async def test_a_critical_alert_of_one_account_goes_to_its_channel(
    fake: FakeSlack, tmp_path: Path
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(ROUTES)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=fake.api_url,
        slack_channel="CDEFAULT01",
        slack_post_interval_s=0,
        routing_path=path,
    )
    state = SqliteState(tmp_path / "state")
    critical = an_alert("root-console-login", severity=Severity.CRITICAL, account=ACCOUNT_A)
    other = an_alert("iam-user-created", event_id="11111111-2222-3333-4444-555555555555")
    state.outbox.add_alerts([critical, other])
    client = slack_client(BOT_TOKEN, base_url=fake.api_url, retry_backoff_s=0.01)
    notifier = slack_notifier(settings, state, rules=RULES, client=client)
    assert await flush_outbox(state.outbox, notifier) == 2
    assert [m.channel for m in fake.posted] == ["C0CRIT0001", "CDEFAULT01"]
    state.close()

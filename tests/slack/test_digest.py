"""The daily digest: every match below ALERT_MIN_SEVERITY counted per day, rule, account and
principal as files commit (once per file), and posted once a day with the active mutes."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from builders import ACCOUNT_A, record
from fake_slack import BOT_TOKEN, FakeSlack

from umbrellabot.app.digest import post_digest, yesterday
from umbrellabot.config import Settings
from umbrellabot.enrich.enrichment import enrich_stream
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import MuteKey
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet
from umbrellabot.slack.client import slack_client
from umbrellabot.storage.sqlite import SqliteState

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC).timestamp()
DAY = "2026-12-01"


def sg_change(user: str, n: int) -> dict[str, Any]:
    """A security-group change (the INFO rule security-group-changed), by `user`."""
    return {
        **record(
            "AuthorizeSecurityGroupIngress",
            "ec2.amazonaws.com",
            event_id=f"00000000-0000-4000-8000-{n:012d}",
            requestParameters={"groupId": "sg-1", "ipPermissions": {"items": []}},
        ),
        "eventTime": f"{DAY}T10:00:{n % 60:02d}Z",
        "recipientAccountId": ACCOUNT_A,
        "userIdentity": {"type": "IAMUser", "userName": user, "accountId": ACCOUNT_A},
    }


def enriched(records: list[dict[str, Any]]) -> Any:
    rules = RuleSet(load_rules([default_rules_path()], {"allowed_countries": ["US"]}))
    source = io.BytesIO(orjson.dumps({"Records": records}))
    return enrich_stream(source, io.BytesIO(), rules, lambda ip: "US")


def test_quiet_matches_are_counted_and_committed_once_per_file(tmp_path: Path) -> None:
    result = enriched([sg_change("alice", 1), sg_change("alice", 2), sg_change("bob", 3)])
    counted = {(k.rule_id, k.principal, k.day): n for k, n in result.quiet.items()}
    assert counted[("security-group-changed", "alice", DAY)] == 2
    assert counted[("security-group-changed", "bob", DAY)] == 1
    assert not any(a.rule_id == "security-group-changed" for a in result.alerts)  # not alerted
    state = SqliteState(tmp_path / "state")
    for n, key in enumerate(("AWSLogs/a.json.gz", "AWSLogs/b.json.gz")):
        state.files.record_done(key, "e", f"out/{n}", 3, [], [], result.quiet)
    rows = {(k.principal): n for k, n in state.digests.quiet_counts(DAY, int(Severity.INFO))}
    assert rows == {"alice": 4, "bob": 2}  # two files, each counted once
    assert state.digests.quiet_counts(DAY, int(Severity.LOW)) == []  # an INFO rule
    assert state.digests.prune_quiet("2026-12-02") == 2
    state.close()


async def test_the_digest_is_posted_once_with_the_mutes(fake: FakeSlack, tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    result = enriched([sg_change("alice", 1), sg_change("alice", 2), sg_change("bob", 3)])
    state.files.record_done("AWSLogs/a.json.gz", "e", "out", 3, [], [], result.quiet)
    state.triage.add_mute(
        MuteKey("iam-user-created", "mallory", ACCOUNT_A), NOW + 3600, "UBOB00001", NOW, None
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=fake.api_url,
        slack_channel="CDIGEST01",
        digest_min_severity="info",
        account_names=f"{ACCOUNT_A}=prod-payments",
    )
    client = slack_client(
        BOT_TOKEN, base_url=fake.api_url, retry_backoff_s=0.01, server_error_retries=0
    )
    assert yesterday(NOW) == DAY
    fake.outage = True
    assert await post_digest(settings, state, client, now=NOW) is False  # tried again later
    fake.outage = False
    assert await post_digest(settings, state, client, now=NOW) is True
    assert await post_digest(settings, state, client, now=NOW + 60) is False  # once a day
    [posted] = fake.messages_in("CDIGEST01")
    text = str(posted.blocks)
    assert f"Daily digest for {DAY}" in text and "3 rule matches" in text
    assert "2 `alice`" in text and "1 `bob`" in text
    assert f"`prod-payments ({ACCOUNT_A})`" in text
    assert "*Active mutes (1)*" in text and "mallory" in text
    state.close()

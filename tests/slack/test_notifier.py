"""Slack alerts from the outbox, against the fake Slack with the real slack_sdk client:
rendering and escaping, limits, dedup across a restart, outage and recovery, 429, pacing,
roll-up of a burst, rule channels, the severity threshold and the cycle summary."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import StateOpener
from fake_slack import BOT_TOKEN, FakeSlack, Posted
from rich.console import Console

from umbrellabot.app.delivery import ConsoleNotifier, flush_outbox
from umbrellabot.app.wiring import SlackSettingsError, notifier_for, slack_notifier
from umbrellabot.config import Settings
from umbrellabot.model.alerts import Alert
from umbrellabot.model.severity import Severity
from umbrellabot.slack.alert_messages import alert_message, message_size, rollup_replies
from umbrellabot.slack.client import slack_client
from umbrellabot.slack.notifier import SlackNotifier
from umbrellabot.slack.text import BLOCKS_MAX, MESSAGE_TEXT_MAX, SECTION_TEXT_MAX
from umbrellabot.storage.ports import StateBackend
from umbrellabot.storage.sqlite import SqliteState

CHANNEL = "#security-alerts"
EVIL_AGENT = "aws-cli/2.22 <!channel> <https://evil.example|console.aws.amazon.com> <!here>"
FUTURE = 10**10  # "now" far ahead: every outbox entry is due


def make_alert(
    event_id: str | None = None,
    *,
    rule_id: str = "iam-create-user",
    principal: str = "arn:aws:iam::111111111111:user/alice",
    severity: Severity = Severity.HIGH,
    **fields: Any,
) -> Alert:
    values: dict[str, Any] = {
        "rule_id": rule_id,
        "rule_title": "IAM user created",
        "severity": severity,
        "event_id": event_id or str(uuid.uuid4()),
        "event_time": "2026-11-29T10:00:00Z",
        "event_source": "iam.amazonaws.com",
        "event_name": "CreateUser",
        "principal": principal,
        "identity_type": "IAMUser",
        "account": "111111111111",
        "region": "us-east-1",
        "source_ip": "52.95.110.1",
        "country": "US",
        "user_agent": "aws-cli/2.22",
        "error_code": None,
        "runbook": "Ask the principal's owner whether the user was expected.",
        "author": None,
        "source_file": "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/29/a.json.gz",
    }
    values.update(fields)
    return Alert(**values)


def record(state: StateBackend, alerts: list[Alert], key: str | None = None) -> int:
    """The alerts of one processed log file, committed like the ingest cycle does."""
    key = key or f"AWSLogs/file-{uuid.uuid4()}.json.gz"
    events = [(a.event_id or "", a.event_time, a.severity.name) for a in alerts]
    return state.files.record_done(key, "etag", f"processed/{key}", len(alerts), events, alerts)


def settings_for(fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": fake.api_url,
        "slack_channel": CHANNEL,
        "slack_post_interval_s": 0,
        "slack_rollup_threshold": 5,
        "slack_rollup_window_minutes": 10,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def notifier(
    settings: Settings, state: StateBackend, rule_channels: dict[str, str] | None = None, **kw: Any
) -> SlackNotifier:
    assert settings.slack_bot_token is not None
    client = slack_client(
        settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        server_error_retries=kw.pop("server_error_retries", 1),
        retry_backoff_s=0.01,
        rate_limit_retries=kw.pop("rate_limit_retries", 3),
    )
    return slack_notifier(settings, state, rule_channels, client=client, **kw)


def all_text(message: Posted) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def block_texts(blocks: Any) -> Iterator[str]:
    if isinstance(blocks, dict):
        for key, value in blocks.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from block_texts(value)
    elif isinstance(blocks, list):
        for value in blocks:
            yield from block_texts(value)


def post_calls(fake: FakeSlack) -> list[Any]:
    return [c for c in fake.calls if c.method == "chat.postMessage"]


@pytest.fixture
def state(state_opener: StateOpener) -> StateBackend:
    """SQLite, or DynamoDB on moto's server: what the notifier is told of is the same."""
    return state_opener()  # type: ignore[no-any-return]


# rendering and escaping


async def test_alert_is_rendered_with_every_field_and_log_text_arrives_inert(
    fake: FakeSlack, state: StateBackend
) -> None:
    alert = make_alert(
        "ev-0001",
        user_agent=EVIL_AGENT,
        principal="<@U0ADMIN01> & co",
        error_code="AccessDenied<!subteam^S123>",
        author="Acme Security <!everyone>",
        runbook="Rotate the keys; see https://wiki.example/runbooks/iam_user?a=1&b=2.",
    )
    record(state, [alert])
    assert await flush_outbox(state.outbox, notifier(settings_for(fake), state)) == 1

    (message,) = fake.posted
    assert message.channel == CHANNEL and message.thread_ts is None
    text = all_text(message)
    # every field of the contract
    for expected in (
        ":red_circle:",
        "*HIGH*",
        "IAM user created",
        "&lt;@U0ADMIN01&gt; &amp; co",
        "IAMUser",
        "111111111111",
        "iam:CreateUser",
        "failed: `AccessDenied&lt;!subteam^S123&gt;`",
        "us-east-1",
        "52.95.110.1",
        "(US)",
        "2026-11-29 10:00:00 UTC",
        "`aws-cli/2.22 &lt;!channel&gt; &lt;https://evil.example|console.aws.amazon.com&gt;",
        "Rotate the keys",
        "ev-0001",
        "Acme Security &lt;!everyone&gt;",
    ):
        assert expected in text, expected
    # nothing from the log is live
    for live in (
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<@U0ADMIN01>",
        "<!subteam",
        "<https://evil",
    ):
        assert live not in text
    # the only links: our console link (fixed label) and the runbook's bare URL
    links = [link for t in block_texts(message.blocks) for link in re.findall(r"<([^>]*)>", t)]
    assert links == [
        "https://wiki.example/runbooks/iam_user?a=1&amp;b=2",
        "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1"
        "#/events/ev-0001|Open in the AWS console",
    ]
    # no auto-linking by Slack, no previews of anything
    assert all(
        obj.get("verbatim") is True
        for block in message.blocks or []
        for obj in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
        if obj.get("type") == "mrkdwn"
    )
    # the buttons carry the outbox id of the alert, never text from the log
    [actions] = [block for block in message.blocks or [] if block["type"] == "actions"]
    values = [e.get("value") for e in actions["elements"] if "value" in e]
    values += [o["value"] for e in actions["elements"] for o in e.get("options", [])]
    assert values and all(re.fullmatch(r"\d+(:(1h|24h|7d))?", str(v)) for v in values)
    (call,) = post_calls(fake)
    assert call.data["unfurl_links"] is False and call.data["unfurl_media"] is False


def test_console_link_cannot_be_steered_by_log_text() -> None:
    crafted = make_alert("x>|<!here>&y", region="us-east-1")
    context = alert_message(crafted).blocks[-1]["elements"][0]["text"]
    assert "events/x%3E%7C%3C%21here%3E%26y|Open in the AWS console>" in context
    bad_region = make_alert("ev-1", region="evil.example/#")
    assert "console.aws.amazon.com" not in json.dumps(alert_message(bad_region).blocks)


def test_huge_log_text_is_truncated_within_slack_limits() -> None:
    alert = make_alert(
        user_agent="A" * 10_000,
        runbook="step & " * 20_000,
        principal="p" * 5_000,
        rule_title="T" * 5_000,
        error_code="E" * 5_000,
        source_file="k" * 5_000,
    )
    message = alert_message(alert)
    assert len(message.blocks) <= BLOCKS_MAX
    assert message_size(message) <= MESSAGE_TEXT_MAX
    assert len(message.text) <= 3000
    for block in message.blocks:
        for text in block_texts(block):
            assert len(text) <= SECTION_TEXT_MAX
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
    user_agent = next(t for t in block_texts(message.blocks) if t.startswith("*User agent*"))
    assert "…" in user_agent and user_agent.endswith("`")
    assert "&amp" in json.dumps(message.blocks)  # escaped, and never half an entity at a cut
    assert not re.search(r"&(?!amp;|lt;|gt;)", "".join(block_texts(message.blocks)))

    replies = rollup_replies([alert] * 1000, first_number=6)
    assert sum(r.alerts for r in replies) == 1000
    for reply in replies:
        assert len(reply.message.blocks) <= BLOCKS_MAX
        assert message_size(reply.message) <= MESSAGE_TEXT_MAX
        assert all(len(t) <= SECTION_TEXT_MAX for t in block_texts(reply.message.blocks))


# never twice


async def test_dedup_across_a_restart(fake: FakeSlack, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    settings = settings_for(fake)
    first = SqliteState(state_dir)
    record(first, [make_alert("ev-dup")], key="AWSLogs/a.json.gz")
    assert await flush_outbox(first.outbox, notifier(settings, first)) == 1
    first.close()

    restarted = SqliteState(state_dir)
    try:
        # CloudTrail delivers the same event again, in another file
        assert record(restarted, [make_alert("ev-dup")], key="AWSLogs/b.json.gz") == 0
        again = notifier(settings, restarted)
        assert await flush_outbox(restarted.outbox, again, now=FUTURE) == 0
        assert len(fake.posted) == 1
        # the same event for another rule, and a new event, are told
        record(restarted, [make_alert("ev-dup", rule_id="other-rule"), make_alert("ev-new")])
        assert await flush_outbox(restarted.outbox, again) == 2
    finally:
        restarted.close()
    assert sorted(m.text.split("eventID ")[-1] for m in fake.posted) == [
        "ev-dup",
        "ev-dup",
        "ev-new",
    ]
    assert len(fake.posted) == 3


# never lost


async def test_outage_then_recovery_loses_nothing_and_posts_once(
    fake: FakeSlack, state: StateBackend
) -> None:
    ids = [f"ev-{i}" for i in range(3)]
    record(state, [make_alert(i, principal=f"user-{i}") for i in ids])
    slack = notifier(settings_for(fake), state)

    fake.outage = True
    before = time.time()
    assert await flush_outbox(state.outbox, slack) == 0
    assert state.outbox.outbox_depth() == 3
    attempts = [
        state.outbox.delivery_attempt(p.id) for p in state.outbox.pending_alerts(now=FUTURE)
    ]
    assert all(a is not None and a[0] == 1 and a[1] >= before + 29 for a in attempts)
    assert state.outbox.pending_alerts() == []  # not due again yet
    # still down at the next attempt: pushed further back
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 0
    later = [state.outbox.delivery_attempt(p.id) for p in state.outbox.pending_alerts(now=FUTURE)]
    assert all(a is not None and a[0] == 2 and a[1] >= before + 59 for a in later)
    assert fake.posted == []

    fake.outage = False
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 3
    assert state.outbox.outbox_depth() == 0
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 0
    assert sorted(m.text.split("eventID ")[-1] for m in fake.posted) == ids


async def test_network_error_leaves_alerts_in_the_outbox(
    fake: FakeSlack, state: StateBackend
) -> None:
    record(state, [make_alert("ev-net")])
    unreachable = settings_for(fake, slack_api_url="http://127.0.0.1:9/api/")
    assert await flush_outbox(state.outbox, notifier(unreachable, state)) == 0
    (pending,) = state.outbox.pending_alerts(now=FUTURE)
    assert pending.attempts == 1
    assert await flush_outbox(state.outbox, notifier(settings_for(fake), state), now=FUTURE) == 1
    assert len(fake.posted) == 1


class OutageAfter(FakeSlack):
    """Slack goes down after `posts` successful posts."""

    def __init__(self, posts: int) -> None:
        super().__init__()
        self.posts_left = posts

    def _m_chat_postMessage(self, data: dict[str, Any]) -> dict[str, Any]:
        result = super()._m_chat_postMessage(data)
        self.posts_left -= 1
        if self.posts_left <= 0:
            self.outage = True
        return result


async def test_outage_in_the_middle_of_a_burst(state: StateBackend) -> None:
    if not isinstance(state, SqliteState):  # 250 alerts on moto: 13 s for nothing new
        pytest.skip("the roll-up's storage on DynamoDB is the burst test's; this is Slack's")
    fake = OutageAfter(posts=7)  # 5 alerts, the roll-up parent, one thread reply
    await fake.start()
    try:
        record(state, [make_alert(f"ev-{i:03d}") for i in range(250)])
        slack = notifier(settings_for(fake), state)
        assert await flush_outbox(state.outbox, slack) == 105
        assert state.outbox.outbox_depth() == 145
        fake.outage = False
        fake.posts_left = 10**6
        assert await flush_outbox(state.outbox, slack, now=FUTURE) == 145
    finally:
        await fake.stop()
    told = re.findall(r"events/(ev-\d+)\|", " ".join(all_text(m) for m in fake.posted))
    assert sorted(told) == [f"ev-{i:03d}" for i in range(250)]  # all, each once
    parent = fake.posted[5]
    assert "*250* alerts" in all_text(parent)
    assert {m.thread_ts for m in fake.posted[6:]} == {parent.ts}


class Picky(FakeSlack):
    """Refuses blocks (as for a rendering bug) and does not know channel C0GONE001."""

    def _m_chat_postMessage(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("channel") == "C0GONE001":
            return {"ok": False, "error": "channel_not_found"}
        if data.get("blocks"):
            return {"ok": False, "error": "invalid_blocks"}
        return super()._m_chat_postMessage(data)


async def test_refused_blocks_fall_back_to_text_and_a_missing_channel_waits(
    state: StateBackend,
) -> None:
    fake = Picky()
    await fake.start()
    try:
        record(state, [make_alert("ev-text"), make_alert("ev-gone", rule_id="gone")])
        slack = notifier(settings_for(fake), state, {"gone": "C0GONE001"})
        assert await flush_outbox(state.outbox, slack) == 1
    finally:
        await fake.stop()
    (message,) = fake.posted
    assert message.blocks is None and message.text.endswith("eventID ev-text")
    (waiting,) = state.outbox.pending_alerts(now=FUTURE)
    assert waiting.alert.event_id == "ev-gone" and waiting.attempts == 1


# 429 and pacing


async def test_rate_limited_post_waits_retry_after(fake: FakeSlack, state: StateBackend) -> None:
    record(state, [make_alert("ev-429")])
    fake.rate_limited_calls = 1
    fake.retry_after_s = 1
    started = time.monotonic()
    assert await flush_outbox(state.outbox, notifier(settings_for(fake), state)) == 1
    assert time.monotonic() - started >= 1.0
    calls = post_calls(fake)
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 1.0
    assert len(fake.posted) == 1


async def test_rate_limit_beyond_retries_defers_by_retry_after(
    fake: FakeSlack, state: StateBackend
) -> None:
    record(state, [make_alert("ev-429")])
    fake.rate_limited_calls = 5
    fake.retry_after_s = 120
    slack = notifier(settings_for(fake), state, rate_limit_retries=0, retry_base_s=1)
    before = time.time()
    assert await flush_outbox(state.outbox, slack) == 0
    (pending,) = state.outbox.pending_alerts(now=FUTURE)
    attempt = state.outbox.delivery_attempt(pending.id)
    assert attempt is not None and attempt[1] >= before + 120


async def test_posts_to_one_channel_are_paced(fake: FakeSlack, state: StateBackend) -> None:
    record(state, [make_alert(principal=f"user-{i}") for i in range(5)])
    slack = notifier(settings_for(fake, slack_post_interval_s=0.05), state)
    assert await flush_outbox(state.outbox, slack) == 5
    times = [c.at for c in post_calls(fake)]
    assert len(times) == 5
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(times))


async def test_pacing_uses_the_injected_clock(fake: FakeSlack, state: StateBackend) -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    record(state, [make_alert(principal=f"user-{i}") for i in range(3)])
    slack = notifier(
        settings_for(fake, slack_post_interval_s=1.0),
        state,
        monotonic=lambda: now[0],
        sleep=sleep,
    )
    assert await flush_outbox(state.outbox, slack) == 3
    assert slept == [1.0, 1.0]


# roll-up


async def test_burst_is_rolled_up_into_a_thread(
    fake: FakeSlack, state: StateBackend, state_opener: StateOpener
) -> None:
    burst = [make_alert(f"ev-{i:03d}") for i in range(500)]
    bob = make_alert("ev-bob", principal="arn:aws:iam::111111111111:user/bob")
    record(state, [*burst[:200], bob])
    record(state, burst[200:])
    slack = notifier(settings_for(fake), state)
    assert await flush_outbox(state.outbox, slack, batch=300) == 501
    assert state.outbox.outbox_depth() == 0

    top = fake.messages_in(CHANNEL)
    parents = [m for m in top if "alerts of IAM user created" in m.text]
    assert len(parents) == 1
    parent = parents[0]
    individual = [m for m in top if m is not parent]
    assert len(individual) == 6  # the first 5 of alice, and bob's
    assert sum("user/bob" in m.text for m in individual) == 1
    replies = fake.replies_to(parent.ts)
    assert 1 <= len(replies) <= 8
    assert len(fake.posted) <= 15  # not 501
    assert "ev-bob" not in " ".join(all_text(m) for m in replies)
    # the parent's count was kept up to date: 299 after the first round, then 500
    assert parent.updates
    assert "*500* alerts" in all_text(parent)
    assert "the other 495 are listed in this thread" in all_text(parent)
    # nothing lost, nothing twice
    told = re.findall(r"events/(ev-\d+)\|", " ".join(all_text(m) for m in fake.posted))
    assert sorted(told) == sorted(a.event_id or "" for a in burst)

    # after a restart the same window goes on in the same thread
    state.close()
    restarted = state_opener()
    try:
        record(restarted, [make_alert(f"ev-late-{i}") for i in range(10)])
        assert await flush_outbox(restarted.outbox, notifier(settings_for(fake), restarted)) == 10
    finally:
        restarted.close()
    assert len(fake.replies_to(parent.ts)) == len(replies) + 1
    assert "*510* alerts" in all_text(parent)
    assert len(fake.messages_in(CHANNEL)) == len(top)


async def test_two_processes_rolling_up_one_burst_post_one_parent(
    fake: FakeSlack, state: StateBackend, state_opener: StateOpener
) -> None:
    """Two workers deliver the same burst at once, each its own batches: one of them posts the
    parent, the other's alerts wait a round and go in its thread; the count adds up."""
    burst = [make_alert(f"ev-{i:03d}") for i in range(60)]
    record(state, burst)
    other = state_opener()
    one, two = notifier(settings_for(fake), state), notifier(settings_for(fake), other)
    delivered = 0
    for _ in range(10):
        rounds = await asyncio.gather(
            flush_outbox(state.outbox, one, batch=10, owner="p1"),
            flush_outbox(other.outbox, two, batch=10, owner="p2"),
        )
        delivered += sum(rounds)
        if state.outbox.outbox_depth() == 0:
            break
    assert delivered == 60
    top = fake.messages_in(CHANNEL)
    parents = [m for m in top if "alerts of IAM user created" in m.text]
    assert len(parents) == 1, [m.text for m in top]
    told = re.findall(r"events/(ev-\d+)\|", " ".join(all_text(m) for m in fake.posted))
    assert sorted(told) == sorted(a.event_id or "" for a in burst)  # each once
    # its count is its window's, updated from what both added; the alerts before it may have
    # gone out on their own in either process's first window (5 each at most)
    shown = int(re.findall(r"\*(\d+)\* alerts", all_text(parents[0]))[-1])
    stored = state.rollups.rollup_window(CHANNEL, "iam-create-user", burst[0].principal or "", 0)
    assert stored is not None and stored.parent_ts == parents[0].ts and shown == stored.alerts
    assert len(top) - 1 + shown >= 60 and len(top) - 1 <= 10


async def test_a_new_window_starts_after_m_minutes(fake: FakeSlack, state: StateBackend) -> None:
    now = [1_000_000.0]
    settings = settings_for(fake, slack_rollup_threshold=2, slack_rollup_window_minutes=1)
    slack = notifier(settings, state, clock=lambda: now[0])
    record(state, [make_alert() for _ in range(3)])
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 3
    assert len(fake.messages_in(CHANNEL)) == 3  # 2 on their own + the parent
    now[0] += 61
    record(state, [make_alert() for _ in range(2)])
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 2
    assert len(fake.messages_in(CHANNEL)) == 5  # a new window: posted on their own


# channels, threshold, summary, choice


async def test_rule_may_name_its_own_channel(fake: FakeSlack, state: StateBackend) -> None:
    record(state, [make_alert("ev-a"), make_alert("ev-b", rule_id="root-login")])
    slack = notifier(settings_for(fake), state, {"root-login": "C0ROOT001"})
    assert await flush_outbox(state.outbox, slack) == 2
    assert [m.text.split("eventID ")[-1] for m in fake.messages_in(CHANNEL)] == ["ev-a"]
    assert [m.text.split("eventID ")[-1] for m in fake.messages_in("C0ROOT001")] == ["ev-b"]


async def test_alerts_below_min_severity_leave_the_outbox_unposted(
    fake: FakeSlack, state: StateBackend
) -> None:
    record(
        state,
        [make_alert("ev-high"), make_alert("ev-crit", severity=Severity.CRITICAL)],
    )
    slack = notifier(settings_for(fake, alert_min_severity="critical"), state)
    assert await flush_outbox(state.outbox, slack) == 2
    assert state.outbox.outbox_depth() == 0
    (message,) = fake.posted
    assert ":rotating_light:" in message.text and "ev-crit" in message.text
    assert slack.skipped == 1


async def test_cycle_summary_is_off_by_default(fake: FakeSlack, state: StateBackend) -> None:
    quiet = notifier(settings_for(fake), state)
    assert not await quiet.post_summary(files=3)
    chatty = notifier(settings_for(fake, slack_cycle_summary=True), state)
    assert not await chatty.post_summary(files=0)
    assert await chatty.post_summary(
        files=3, records=1200, alerts=2, by_severity={Severity.HIGH: 2}
    )
    (message,) = fake.posted
    assert message.text == "Processed 3 log files (1,200 records): 2 new alerts (2 high)."


def test_console_without_slack_tokens(state: StateBackend) -> None:
    def settings(**values: Any) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    console = Console()
    assert isinstance(notifier_for(settings(), state, console), ConsoleNotifier)
    chosen = notifier_for(settings(slack_bot_token=BOT_TOKEN, slack_channel="C1"), state, console)
    assert isinstance(chosen, SlackNotifier) and chosen.channel == "C1"
    with pytest.raises(SlackSettingsError, match="SLACK_CHANNEL"):
        notifier_for(settings(slack_bot_token=BOT_TOKEN), state, console)


async def test_an_api_url_without_its_trailing_slash_still_reaches_slack(
    fake: FakeSlack, state: StateBackend
) -> None:
    assert fake.api_url.endswith("/")
    without = settings_for(fake, slack_api_url=fake.api_url.rstrip("/"))
    record(state, [make_alert("ev-slash")])
    assert await flush_outbox(state.outbox, notifier(without, state)) == 1
    assert [c.method for c in fake.calls] == ["chat.postMessage"]


async def test_a_post_slack_accepted_but_whose_answer_was_lost_is_not_posted_again(
    fake: FakeSlack, state: StateBackend
) -> None:
    """The answer to the post is a 500 although Slack kept the message: before posting again,
    the notifier finds its own post by its metadata."""
    record(state, [make_alert("ev-lost-answer")])
    fake.accepted_then_lost = 1
    assert await flush_outbox(state.outbox, notifier(settings_for(fake), state)) == 1
    assert len(fake.posted) == 1 and fake.posted[0].metadata is not None
    assert fake.posted[0].metadata["event_type"] == "umbrellabot_alert"
    assert any(call.method == "conversations.history" for call in fake.calls)
    assert state.outbox.outbox_depth() == 0


async def test_an_alert_failed_in_an_earlier_round_is_looked_for_before_posting(
    fake: FakeSlack, state: StateBackend
) -> None:
    """Slack kept the post but every answer was lost: the round fails, the alert waits; the
    next round finds it posted and marks it delivered without a second post."""
    record(state, [make_alert("ev-every-answer-lost")])
    fake.accepted_then_lost = 3  # the post and both retries' posts (were any made)
    slack = notifier(settings_for(fake), state, server_error_retries=0)
    assert await flush_outbox(state.outbox, slack) == 0
    assert len(fake.posted) == 1  # kept by Slack, though the notifier could not know
    fake.accepted_then_lost = 0
    assert await flush_outbox(state.outbox, slack, now=FUTURE) == 1
    assert len(fake.posted) == 1 and state.outbox.outbox_depth() == 0


async def test_a_rolled_up_reply_whose_answer_was_lost_is_not_posted_again(
    fake: FakeSlack, state: StateBackend
) -> None:
    record(state, [make_alert(f"ev-{i:03d}") for i in range(8)])  # 5 alone, a parent, a reply
    fake.accepted_then_lost = 0
    slack = notifier(settings_for(fake), state)
    losing = LoseAnswerTo(fake, lambda data: bool(data.get("thread_ts")))
    assert await flush_outbox(state.outbox, slack) == 8
    assert losing.lost == 1
    replies = [m for m in fake.posted if m.thread_ts]
    assert len(replies) == 1  # the thread reply, once
    assert any(call.method == "conversations.replies" for call in fake.calls)


class LoseAnswerTo:
    """Lose the answer to the first post that `matches` (Slack keeps the message)."""

    def __init__(self, fake: FakeSlack, matches: Any) -> None:
        self.lost = 0
        original = fake._m_chat_postMessage

        def post(data: dict[str, Any]) -> dict[str, Any]:
            result = original(data)
            if matches(data) and not self.lost:
                self.lost += 1
                fake.accepted_then_lost += 1
            return result

        fake._m_chat_postMessage = post  # type: ignore[method-assign]


async def test_a_follow_up_goes_in_its_alerts_thread_or_stands_alone(
    fake: FakeSlack, state: StateBackend
) -> None:
    from umbrellabot.model.alerts import dedup_key
    from umbrellabot.model.own_alerts import delivery_resumed, delivery_silent

    silent = delivery_silent("111111111111", "AWSLogs/x/last.json.gz", 1_700_000_000.0, 6)
    state.outbox.add_alerts([silent])
    slack = notifier(settings_for(fake), state)
    assert await flush_outbox(state.outbox, slack) == 1
    [parent] = fake.messages_in(CHANNEL)
    resumed = delivery_resumed(
        "111111111111", dedup_key(silent), "AWSLogs/x/new.json.gz", 1_700_030_000.0, 1_700_000_000.0
    )
    orphan = delivery_resumed(
        "222222222222", "never-posted", "AWSLogs/y/new.json.gz", 1_700_030_000.0, 1_700_000_000.0
    )
    state.outbox.add_alerts([resumed, orphan])
    assert await flush_outbox(state.outbox, slack) == 2
    [line] = fake.replies_to(parent.ts)
    assert "arrive again, after 8.3 hours" in line.text and "new.json.gz" in line.text
    standalone = [m for m in fake.messages_in(CHANNEL) if m.thread_ts is None]
    assert len(standalone) == 2 and "222222222222" in all_text(standalone[1])

"""The Slack bot against the fake Slack (tests/fake_slack.py), driven by the real slack_bolt
AsyncApp and slack_sdk Socket Mode / Web API clients: nothing of Bolt or slack_sdk is mocked."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, create_user, log_bytes, log_key, record, today
from fake_slack import APP_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER, FakeSlack, Posted, mention

from umbrellabot import __version__
from umbrellabot.app import services
from umbrellabot.app.wiring import slack_bot
from umbrellabot.config import Settings, SettingsError
from umbrellabot.model.alerts import Alert
from umbrellabot.model.severity import Severity
from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import Query, QueryError, Row
from umbrellabot.query.story import build_story
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules
from umbrellabot.slack import commands, replies
from umbrellabot.slack.bot import SlackBot, SlackBotError
from umbrellabot.slack.recent import recent_from_engine, recent_from_outbox
from umbrellabot.storage.sqlite import SqliteState

pytestmark = pytest.mark.timeout(60)

INDEXED_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
LONG_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
UNKNOWN_ID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
CHANNEL = "CSEC00001"
ALICE = "UALICE001"


# fixtures


class FakeEngine:
    """The Engine protocol: records every query, answers from `rows` or fails."""

    name = "fake-engine"

    def __init__(self) -> None:
        self.queries: list[Query] = []
        self.rows: dict[str, list[Row]] = {}
        self.error: QueryError | None = None
        self.delay_s = 0.0

    async def run(self, query: Query) -> list[Row]:
        self.queries.append(query)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.rows.get(query.name, [])


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules([default_rules_path()], {"allowed_countries": ["US"]})


def enriched_line(rec: dict[str, Any], rules: Sequence[Rule]) -> bytes:
    flagged = build_story(rec, rules).findings
    extra: dict[str, Any] = {}
    if flagged:
        extra = {
            "xpriority": max(f.rule.severity for f in flagged).name,
            "xrules": [f.rule.id for f in flagged],
        }
    return orjson.dumps({**rec, **extra, "xcountry_code": "US"}) + b"\n"


def crafted_create_user() -> dict[str, Any]:
    """CreateUser whose log-derived text tries to mention everyone and fake a link."""
    rec = create_user(INDEXED_ID)
    rec["userAgent"] = "aws-cli/2.22 <!channel> <@U0ADMIN01>"
    rec["requestParameters"] = {"userName": "mallory", "tags": "<https://evil.example|docs>"}
    rec["responseElements"] = {"user": {"userName": "mallory", "arn": "arn:aws:iam::1:user/m"}}
    return rec


def long_record() -> dict[str, Any]:
    policy = {"Statement": [{"Effect": "Allow", "Action": f"s3:Get{i}"} for i in range(120)]}
    return record(
        "PutRolePolicy",
        "iam.amazonaws.com",
        event_id=LONG_ID,
        requestParameters={"roleName": "ops", "policyDocument": json.dumps(policy)},
        responseElements=None,
    )


@pytest.fixture
def world(tmp_path: Path, rules: list[Rule]) -> Iterator[dict[str, Any]]:
    """State with CreateUser indexed (its processed file on disk), a second processed file the
    index does not know (the engine finds it), and an engine."""
    processed = tmp_path / "processed"
    processed.mkdir()
    indexed_file = processed / "a.json.gz"
    indexed_file.write_bytes(
        gzip.compress(enriched_line(record(), rules) + enriched_line(crafted_create_user(), rules))
    )
    engine_file = processed / "b.json"
    engine_file.write_bytes(enriched_line(long_record(), rules))
    state = SqliteState(tmp_path / "state")
    state.files.record_done(
        "AWSLogs/a.json.gz",
        "etag",
        str(indexed_file),
        2,
        [(INDEXED_ID, "2026-11-29T10:00:00Z", "HIGH")],
        [],
    )
    engine = FakeEngine()
    engine.rows["event_by_id"] = [{"path": str(engine_file), "eventid": LONG_ID}]

    async def read_object(location: str) -> bytes:
        return await asyncio.to_thread(Path(location).read_bytes)

    locator = EventLocator(read_object, index=state.events, engine=engine)
    yield {"state": state, "engine": engine, "locator": locator, "tmp": tmp_path}
    state.close()


def settings_for(fake: FakeSlack, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_app_token": APP_TOKEN,
        "slack_api_url": fake.api_url,
        "state_dir": tmp_path / "state",
        "event_lookup_days": 30,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def make_bot(
    fake: FakeSlack, world: dict[str, Any], rules: list[Rule]
) -> AsyncIterator[Callable[..., Any]]:
    bots: list[SlackBot] = []

    async def make(settings: Settings | None = None, **options: Any) -> SlackBot:
        options.setdefault("locator", world["locator"])
        options.setdefault("state", world["state"])
        bot = slack_bot(settings or settings_for(fake, world["tmp"]), rules=rules, **options)
        await bot.start()
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.stop()


async def settled(fake: FakeSlack, bot: Any, envelopes: int) -> None:
    """A positive signal that nothing more is coming: the bot has handled `envelopes` Socket
    Mode envelopes and no answer is in flight."""
    await fake.wait_for(lambda: bot.envelopes_handled >= envelopes)
    await bot.idle()


async def ask(
    fake: FakeSlack, text: str, replies_wanted: int = 1, timeout: float = 10, **kwargs: Any
) -> list[Posted]:
    """Mention the bot; wait for `replies_wanted` replies in the mention's thread."""
    event = mention(text, **kwargs)
    ack = await fake.send_event(event)
    assert ack["envelope_id"]
    thread = event.get("thread_ts") or event["ts"]
    await fake.wait_for(lambda: len(fake.replies_to(thread)) >= replies_wanted, timeout)
    return fake.replies_to(thread)


def all_text(message: Posted) -> str:
    """The fallback text and every text in the blocks."""
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def block_texts(message: Posted) -> str:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return "\n".join(found)


# commands (pure)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"<@{BOT_USER}> check out {INDEXED_ID}", commands.CheckOut(INDEXED_ID)),
        (f"<@{BOT_USER}> show {INDEXED_ID.upper()}", commands.CheckOut(INDEXED_ID.upper(), "show")),
        (f"hey <@{BOT_USER}|umbrellabot> what is `{INDEXED_ID}`?", commands.CheckOut(INDEXED_ID)),
        (
            f"<@{BOT_USER}> check out <http://{INDEXED_ID}|{INDEXED_ID}>",
            commands.CheckOut(INDEXED_ID),
        ),
        (f"<@{BOT_USER}> checkout <mailto:a@b.c|a@b.c>", commands.CheckOut("a@b.c")),
        (f"<@{BOT_USER}> check out ' OR 1=1 --", commands.CheckOut("' OR 1=1 --")),
        (f"<@{BOT_USER}> check out {INDEXED_ID}' OR 1=1 --", commands.CheckOut(INDEXED_ID)),
        (f"<@{BOT_USER}> check out `x &lt;b&gt; &amp;amp;`", commands.CheckOut("x <b> &amp;")),
        (f"<@{BOT_USER}> check out", commands.CheckOut("")),
        (f"<@{BOT_USER}>", commands.Help()),
        (f"<@{BOT_USER}> HELP me", commands.Help()),
        (f"<@{BOT_USER}> status", commands.Status()),
        (f"<@{BOT_USER}> recent", commands.Recent(10)),
        (f"<@{BOT_USER}> recent alerts 3", commands.Recent(3)),
        (f"<@{BOT_USER}> recent 500", commands.Recent(25, "at most 25 are shown at once")),
        (f"<@{BOT_USER}> dance <!here>", commands.Unknown("dance")),
    ],
)
def test_parse(text: str, expected: commands.Command) -> None:
    assert commands.parse(text) == expected


def test_recent_with_a_bad_number() -> None:
    parsed = commands.parse("recent lots")
    assert isinstance(parsed, commands.Recent) and parsed.limit == 10
    assert parsed.note is not None and "not a number" in parsed.note


# check out


async def test_check_out_of_an_indexed_event(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    await make_bot()
    posted = await ask(fake, f"<@{BOT_USER}> check out {INDEXED_ID}", replies_wanted=2)
    ack, story = posted[0], posted[1]
    assert "Looking up" in ack.text and INDEXED_ID in ack.text
    assert ack.channel == story.channel == CHANNEL
    text = block_texts(story)
    # the alert fields
    for expected in (
        "iam:CreateUser",
        INDEXED_ID,
        "alice",
        "IAMUser",
        ACCOUNT_A,
        "us-east-1",
        "52.95.110.1",
        "2026-11-29T10:00:00Z",
        "success",
        "HIGH",
    ):
        assert expected in text, expected
    # the rule and which conditions held, and its runbook
    assert "iam-user-created" in text and "IAM user created" in text
    assert '✓ eventName equals "CreateUser"' in text
    assert "unless (must not hold):" in text and "✗ errorCode exists true" in text
    assert "Runbook:" in text
    # requestParameters / responseElements, pretty
    assert "*requestParameters*" in text and '"userName": "mallory"' in text
    assert "*responseElements*" in text and '"arn": "arn:aws:iam::1:user/m"' in text
    assert "cloudtrailv2/home?region=us-east-1#/events/" + INDEXED_ID in text
    assert "found via the event index" in text
    # log-derived text is inert: no mention, no fake link survives
    everything = all_text(story)
    for raw in ("<!channel>", "<@U0ADMIN01>", "<https://evil.example|docs>"):
        assert raw not in everything
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.example|docs&gt;" in text
    assert world["engine"].queries == []  # the index answered
    assert not fake.uploads  # a short record is shown inline
    assert "*Full record*" in text


async def test_check_out_found_by_the_engine_with_a_long_record_uploads_it(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    await make_bot()
    event = mention(f"<@{BOT_USER}> {LONG_ID} please")  # an eventID anywhere
    await fake.send_event(event)
    await fake.wait_for(lambda: any(u["completed"] for u in fake.uploads.values()))
    posted = fake.replies_to(event["ts"])
    assert len(posted) == 2
    story = block_texts(posted[1])
    assert "follows in this thread as `" + LONG_ID + ".json`" in story
    assert "found via a fake-engine query" in story
    assert "*requestParameters* (truncated:" in story
    [upload] = fake.uploads.values()
    assert upload["filename"] == f"{LONG_ID}.json"
    assert upload["thread_ts"] == event["ts"] and upload["channel"] == CHANNEL
    uploaded = json.loads(upload["content"])
    assert uploaded["eventID"] == LONG_ID and "xrules" not in uploaded  # CloudTrail's record
    [query] = world["engine"].queries
    assert query.name == "event_by_id" and query.all_params()["event_id"] == LONG_ID
    assert LONG_ID not in query.sql  # a parameter, never spliced into the SQL


async def test_upload_failure_gives_a_truncated_block(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    await make_bot()
    original = fake._m_files_getUploadURLExternal
    fake._m_files_getUploadURLExternal = lambda data: {"ok": False, "error": "missing_scope"}  # type: ignore[method-assign]
    try:
        posted = await ask(fake, f"<@{BOT_USER}> check out {LONG_ID}", replies_wanted=3)
    finally:
        fake._m_files_getUploadURLExternal = original  # type: ignore[method-assign]
    text = block_texts(posted[2])
    assert "could not attach the full record" in text and "missing_scope" in text
    assert "(truncated: the first 2,500 of" in text


async def test_check_out_of_an_unknown_id(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    world["engine"].rows.clear()
    await make_bot()
    posted = await ask(fake, f"<@{BOT_USER}> check out {UNKNOWN_ID}", replies_wanted=2)
    assert "Looking up" in posted[0].text
    answer = block_texts(posted[1])
    assert f"found no event `{UNKNOWN_ID}`" in answer and "last 30 days" in answer
    [query] = world["engine"].queries
    assert query.all_params()["event_id"] == UNKNOWN_ID


@pytest.mark.parametrize(
    "typed",
    [
        "' OR 1=1 --",
        "x'; DROP TABLE events; -- &lt;b&gt;",
        f"{INDEXED_ID[:-1]}' OR '1'='1",
    ],
)
async def test_check_out_of_an_injection_attempt(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any], typed: str
) -> None:
    bot = await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> check out {typed}")
    await settled(fake, bot, 1)  # nothing else comes
    assert len(fake.posted) == 1
    assert "is not a CloudTrail eventID" in answer.text
    assert "Looking up" not in all_text(answer)
    assert world["engine"].queries == []  # nothing reached a query
    text = block_texts(answer)
    assert "<b>" not in all_text(answer)
    assert "nothing was looked up" in text


async def test_check_out_without_an_id(fake: FakeSlack, make_bot: Any) -> None:
    await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> check out")
    assert "needs an eventID" in block_texts(answer)


async def test_a_failed_query_gets_a_clear_reply(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    world["engine"].error = QueryError("Athena: FAILED: <TABLE_NOT_FOUND> cloudtrail_enriched")
    await make_bot()
    posted = await ask(fake, f"<@{BOT_USER}> show {UNKNOWN_ID}", replies_wanted=2)
    text = block_texts(posted[1])
    assert "the query failed: Athena: FAILED: &lt;TABLE_NOT_FOUND&gt;" in text


async def test_an_unexpected_error_still_gets_a_reply(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(location: str) -> bytes:
        raise RuntimeError("disk on fire")

    await make_bot(locator=EventLocator(broken, index=world["state"].events))
    posted = await ask(fake, f"<@{BOT_USER}> check out {INDEXED_ID}", replies_wanted=2)
    text = block_texts(posted[1])
    assert "Something went wrong" in text and "reference" in text
    assert "disk on fire" not in text  # details stay in the logs
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text


async def test_a_mention_inside_a_thread_is_answered_in_that_thread(
    fake: FakeSlack, make_bot: Any
) -> None:
    await make_bot()
    event = mention(f"<@{BOT_USER}> help")
    event["thread_ts"] = "1700000000.000100"
    await fake.send_event(event)
    await fake.wait_for(lambda: bool(fake.replies_to("1700000000.000100")))
    assert fake.replies_to(event["ts"]) == []


# help, status, recent


async def test_help_and_unknown_commands(fake: FakeSlack, make_bot: Any) -> None:
    await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> help")
    text = block_texts(answer)
    for command in ("check out <eventID>", "show <eventID>", "recent [N]", "status", "help"):
        assert command.replace("<", "&lt;").replace(">", "&gt;") in text or command in text
    [unknown] = await ask(fake, f"<@{BOT_USER}> dance <@UOTHER001> *now*")
    text = block_texts(unknown)
    assert "I don't know `dance *now*`" in text and "check out" in text
    [empty] = await ask(fake, f"<@{BOT_USER}>")
    assert "What I can do" in block_texts(empty)


async def test_status(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any], rules: list[Rule]
) -> None:
    state: SqliteState = world["state"]
    cycle = state.cycles.start_cycle()
    state.cycles.finish_cycle(cycle, files=3, records=12345, alerts=2, failures=1, backlog=7)

    async def extra() -> list[tuple[str, str]]:
        return [("Query engine", "duckdb")]

    await make_bot(status_extra=extra)
    [answer] = await ask(fake, f"<@{BOT_USER}> status")
    text = block_texts(answer)
    assert "*Last ingest cycle:* finished 20" in text and "s ago)" in text
    for label, value in (
        ("Files", "3"),
        ("Records", "12,345"),
        ("Alerts", "2"),
        ("Failures", "1"),
        ("Backlog (files)", "7"),
    ):
        assert f"*{label}*\n{value}" in text
    enabled = sum(rule.enabled for rule in rules)
    assert f"*Rules loaded*\n{len(rules)} ({enabled} enabled)" in text
    assert __version__ in text and "*Query engine*\nduckdb" in text
    assert "*Alerts waiting for delivery*\n0" in text


async def test_status_lists_the_files_given_up_on(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    state: SqliteState = world["state"]
    key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/x_<!channel>.json.gz"
    abandoned = state.files.record_failure(
        key, "e", "not JSON at byte 12", counts=True, max_attempts=1, retry_base_s=0
    )
    assert abandoned.status == "abandoned"
    await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> status")
    text = block_texts(answer)
    assert "Given up on 1 log file" in text and "umbrellabot retry KEY" in text
    assert "x_&lt;!channel&gt;.json.gz" in text and "<!channel>" not in text  # inert
    assert "not JSON at byte 12 (after 1 attempts)" in text
    # and the alert about it is in the outbox, like any other
    [pending] = state.outbox.pending_alerts()
    assert pending.alert.rule_id == "umbrellabot-file-abandoned"
    assert pending.alert.source_file == key and pending.alert.account == "111122223333"


async def test_status_before_any_cycle(fake: FakeSlack, make_bot: Any, rules: list[Rule]) -> None:
    await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> status")
    text = block_texts(answer)
    assert "none yet" in text and f"{len(rules)} (" in text


def summary_row(event_id: str, when: str, priority: str, rule: str) -> Row:
    return {
        "eventid": event_id,
        "eventtime": when,
        "eventsource": "iam.amazonaws.com",
        "eventname": "CreateUser",
        "user_name": "alice",
        "sourceipaddress": "<!here>",
        "xcountry_code": "US",
        "xpriority": priority,
        "xrules": [rule],
        "errorcode": None,
    }


async def test_recent_from_the_engine(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    engine: FakeEngine = world["engine"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    engine.rows["recent_alerts"] = [
        summary_row(ids[0], "2026-11-29T12:00:00Z", "CRITICAL", "root-login"),
        summary_row(ids[1], "2026-11-29T11:00:00Z", "HIGH", "iam-user-created"),
        summary_row(ids[2], "2026-11-29T10:00:00Z", "BOGUS", "x"),
    ]
    await make_bot(recent=recent_from_engine(engine, Severity.HIGH), recent_label="the history")
    [answer] = await ask(fake, f"<@{BOT_USER}> recent 3")
    text = block_texts(answer)
    assert "The latest 3 alerts" in text
    assert text.index(ids[0]) < text.index(ids[1]) < text.index(ids[2])
    assert "*CRITICAL*" in text and "root-login" in text and "`iam:CreateUser`" in text
    assert "<!here>" not in all_text(answer) and "&lt;!here&gt;" in text
    [query] = engine.queries
    assert query.name == "recent_alerts" and "LIMIT 3" in query.sql


class History:
    def __init__(self, alerts: list[Alert]) -> None:
        self.alerts = alerts

    def recent_alerts(self, limit: int) -> list[Alert]:
        return self.alerts[:limit]


def an_alert(event_id: str, rule_id: str, severity: Severity) -> Alert:
    return Alert(
        rule_id=rule_id,
        rule_title=rule_id,
        severity=severity,
        event_id=event_id,
        event_time="2026-11-29T10:00:00Z",
        event_source="iam.amazonaws.com",
        event_name="CreateUser",
        principal="alice",
        identity_type="IAMUser",
        account=ACCOUNT_A,
        region="us-east-1",
        source_ip="52.95.110.1",
        country="US",
        user_agent="aws-cli",
        error_code=None,
        runbook="",
        author=None,
    )


async def test_recent_from_the_outbox_bounded_and_slow(fake: FakeSlack, make_bot: Any) -> None:
    alerts = [an_alert(f"e-{n}", "rule-a", Severity.HIGH) for n in range(40)]
    alerts.insert(1, an_alert("e-0", "rule-b", Severity.CRITICAL))  # same event, second rule
    source = recent_from_outbox(History(alerts))

    async def slow(limit: int) -> Sequence[replies.RecentItem]:
        await asyncio.sleep(0.5)
        return await source(limit)

    await make_bot(recent=slow, slow_ack_after_s=0.2)
    posted = await ask(fake, f"<@{BOT_USER}> recent 500", replies_wanted=2)
    assert "Fetching the latest 25 alerts" in posted[0].text  # a slow answer is acknowledged
    text = block_texts(posted[1])
    assert "The latest 25 alerts" in text and "at most 25 are shown at once" in text
    first_line = text.split("\n")[1]
    assert "*CRITICAL*" in first_line and "rule-a, rule-b" in first_line
    assert "`e-24`" in text and "`e-25`" not in text


async def test_recent_without_a_source(fake: FakeSlack, make_bot: Any) -> None:
    await make_bot()
    [answer] = await ask(fake, f"<@{BOT_USER}> recent")
    assert "not available" in answer.text


# who may ask


async def test_an_unauthorized_user_gets_a_refusal_and_nothing_else(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any]
) -> None:
    settings = settings_for(fake, world["tmp"], allowed_users=ALICE, allowed_channels=CHANNEL)
    bot = await make_bot(settings)
    [refusal] = await ask(fake, f"<@{BOT_USER}> check out {INDEXED_ID}", user="UMALLORY1")
    assert "only answer the people I am set up for" in block_texts(refusal)
    assert INDEXED_ID not in all_text(refusal)
    [elsewhere] = await ask(fake, f"<@{BOT_USER}> status", channel="COTHER001")
    assert "only answer in the channels" in block_texts(elsewhere)
    await settled(fake, bot, 2)
    assert len(fake.posted) == 2 and world["engine"].queries == []
    # and the allowed user in the allowed channel is answered
    posted = await ask(fake, f"<@{BOT_USER}> check out {INDEXED_ID}", user=ALICE, replies_wanted=2)
    assert "iam-user-created" in block_texts(posted[1])


async def test_messages_from_bots_are_ignored(fake: FakeSlack, make_bot: Any) -> None:
    bot = await make_bot()
    own = mention(f"<@{BOT_USER}> help", user=BOT_USER, bot_id=BOT_ID)
    other_bot = mention(f"<@{BOT_USER}> help", user="UOTHERBOT", bot_id="BOTHER0001")
    bot_message = {**mention(f"<@{BOT_USER}> help"), "subtype": "bot_message"}
    del bot_message["user"]
    for event in (own, other_bot, bot_message):
        ack = await fake.send_event(event)
        assert ack["envelope_id"]  # acknowledged (Slack does not redeliver), never answered
    human = mention(f"<@{BOT_USER}> help")
    await fake.send_event(human)
    await fake.wait_for(lambda: bool(fake.replies_to(human["ts"])))
    await settled(fake, bot, 4)
    assert [m.thread_ts for m in fake.posted] == [human["ts"]]


async def test_a_redelivered_event_is_answered_once(fake: FakeSlack, make_bot: Any) -> None:
    bot = await make_bot()
    event = mention(f"<@{BOT_USER}> help")
    await fake.send_event(event)
    await fake.send_event(event)
    await fake.wait_for(lambda: bool(fake.replies_to(event["ts"])))
    await settled(fake, bot, 2)
    assert len(fake.posted) == 1


async def test_direct_messages_are_answered_channel_messages_are_not(
    fake: FakeSlack, make_bot: Any
) -> None:
    bot = await make_bot()
    in_channel = {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": ALICE,
        "text": "help",
        "ts": f"{time.time():.6f}",
    }
    await fake.send_event(in_channel)
    direct = {
        "type": "message",
        "channel": "D0000001",
        "channel_type": "im",
        "user": ALICE,
        "text": "status",
        "ts": f"{time.time() + 1:.6f}",
    }
    await fake.send_event(direct)
    await fake.wait_for(lambda: bool(fake.replies_to(direct["ts"])))
    await settled(fake, bot, 2)
    assert [m.channel for m in fake.posted] == ["D0000001"]


# the connection


async def test_ping_pong_and_reconnect_after_disconnect(fake: FakeSlack, make_bot: Any) -> None:
    bot = await make_bot()
    await fake.ping_and_wait_pong(b"are-you-there")
    await fake.wait_for(lambda: bot.socket_client.last_ping_pong_time is not None)
    [answer] = await ask(fake, f"<@{BOT_USER}> help")
    assert "What I can do" in block_texts(answer) and fake.connections == 1

    await fake.send_disconnect("refresh_requested")
    await fake.wait_for(lambda: fake.connections == 2 and len(fake._sockets) == 1)
    opened = [call for call in fake.calls if call.method == "apps.connections.open"]
    assert len(opened) == 2 and all(call.token == APP_TOKEN for call in opened)
    posted = await ask(fake, f"<@{BOT_USER}> check out {INDEXED_ID}", replies_wanted=2)
    assert "iam-user-created" in block_texts(posted[1])
    await fake.ping_and_wait_pong(b"still-there")


async def test_refused_tokens_and_missing_tokens(
    fake: FakeSlack, world: dict[str, Any], rules: list[Rule]
) -> None:
    bad_bot = settings_for(fake, world["tmp"], slack_bot_token="xoxb-wrong")
    with pytest.raises(SlackBotError, match="SLACK_BOT_TOKEN: invalid_auth"):
        await slack_bot(bad_bot, locator=world["locator"], rules=rules).start()
    bad_app = settings_for(fake, world["tmp"], slack_app_token="xapp-wrong")
    with pytest.raises(SlackBotError, match="SLACK_APP_TOKEN: invalid_auth"):
        await slack_bot(bad_app, locator=world["locator"], rules=rules).start()
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN is not set"):
        slack_bot(
            settings_for(fake, world["tmp"], slack_app_token=None),
            locator=world["locator"],
            rules=rules,
        )
    assert fake.connections == 0


# responsiveness


FILES_IN_BACKLOG = 30  # 300,000 records: several times longer than the questions take
RECORDS_PER_FILE = 10_000


def replied(fake: FakeSlack, thread: str, count: int) -> Callable[[], bool]:
    return lambda: len(fake.replies_to(thread)) >= count


def first_reply_delay(fake: FakeSlack, thread: str, sent_at: float) -> float | None:
    for call in fake.calls:
        if call.method == "chat.postMessage" and call.data.get("thread_ts") == thread:
            return call.at - sent_at
    return None


@pytest.fixture
def s3_client(aws_env: dict[str, str]) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])


async def test_first_reply_within_2s_while_a_backlog_is_ingested(
    fake: FakeSlack, make_bot: Any, world: dict[str, Any], s3_client: Any, tmp_path: Path
) -> None:
    """The real Ingestor works through a backlog from (moto's) S3 in the same event loop, with
    enrichment in a thread of this process (ENRICH_WORKERS=0, the harshest case for the loop:
    it competes for the GIL), while people ask."""
    started = time.monotonic()
    bucket = f"trail-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    records = [record(ip=f"52.95.{i % 200}.{i % 250}") for i in range(RECORDS_PER_FILE)]
    body = log_bytes([*records, create_user()])
    for n in range(FILES_IN_BACKLOG):
        key = log_key(ACCOUNT_A, "us-east-1", today(), f"f{n:03d}")
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    setup_s = time.monotonic() - started
    ingest_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        cloudtrail_bucket_name=bucket,
        state_dir=tmp_path / "ingest-state",
        enrich_workers=0,
        s3_concurrency=8,
    )
    await make_bot()
    files_done = 0

    def done() -> None:
        nonlocal files_done
        files_done += 1

    lags: list[float] = []

    async def measure_loop_lag() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    async with services.ingestor(ingest_settings) as runner:
        planned = asyncio.Event()
        cycle = asyncio.create_task(
            runner.run_cycle(on_planned=lambda _: planned.set(), on_file_done=done)
        )
        lag_probe = asyncio.create_task(measure_loop_lag())
        try:
            await asyncio.wait_for(planned.wait(), 30)
            await asyncio.sleep(0.3)  # downloads and enrichment under way
            first_file_s = time.monotonic() - started
            files_before = files_done
            delays: list[float | None] = []
            stories: list[float] = []
            questions = [f"check out {INDEXED_ID}", "status", "help", f"show {INDEXED_ID}"]
            asked = 0
            # at least two rounds, and on until the backlog has moved on (a positive signal:
            # the files and the answers shared the loop), within a bound
            while asked < 8 or (files_done == files_before and asked < 200 and not cycle.done()):
                text = questions[asked % len(questions)]
                asked += 1
                event = mention(f"<@{BOT_USER}> {text}")
                sent_at = time.monotonic()
                await fake.send_event(event)
                await fake.wait_for(replied(fake, event["ts"], 1), timeout=10)
                delays.append(first_reply_delay(fake, event["ts"], sent_at))
                if INDEXED_ID in text:
                    await fake.wait_for(replied(fake, event["ts"], 2), timeout=20)
                    stories.append(time.monotonic() - sent_at)
                    assert "iam-user-created" in block_texts(fake.replies_to(event["ts"])[1])
                await asyncio.sleep(0.15)
            still_running = not cycle.done()
            files_during = files_done - files_before
        finally:
            lag_probe.cancel()
            cycle.cancel()
            await asyncio.gather(cycle, lag_probe, return_exceptions=True)
    print(
        f"\nfirst reply: {', '.join(f'{d:.3f}s' for d in delays if d is not None)}; story:"
        f" {', '.join(f'{s:.3f}s' for s in stories)}; files done meanwhile: {files_during};"
        f" setup {setup_s:.2f}s, questions from {first_file_s:.2f}s;"
        f" loop lag max {max(lags) * 1000:.0f} ms, mean {sum(lags) / len(lags) * 1000:.1f} ms"
    )
    assert still_running, "the backlog was done before the questions: make it bigger"
    assert files_during >= 1, "the backlog did not progress while the bot answered"
    assert all(d is not None and d < 2.0 for d in delays), delays


# with the real DuckDB engine


async def test_check_out_and_recent_through_the_duckdb_engine(
    fake: FakeSlack, world: dict[str, Any], rules: list[Rule], tmp_path: Path
) -> None:
    """No index entry: the eventID is found by a DuckDB query over enriched files (the query
    parameters are bound, never spliced), and `recent` is the same engine's recent_alerts."""
    duckdb_engine = pytest.importorskip("umbrellabot.query.duckdb_engine")
    day = today()
    folder = tmp_path / "enriched" / "AWSLogs" / ACCOUNT_A / "CloudTrail" / "us-east-1"
    folder = folder / f"{day:%Y/%m/%d}"
    folder.mkdir(parents=True)
    event_id = str(uuid.uuid4())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    flagged = {**create_user(event_id), "eventTime": now}
    quiet = {**record(), "eventTime": now}
    lines = enriched_line(flagged, rules) + enriched_line(quiet, rules)
    (folder / f"{ACCOUNT_A}_CloudTrail_us-east-1_x.json.gz").write_bytes(gzip.compress(lines))
    engine = duckdb_engine.DuckDBEngine(tmp_path / "enriched", timeout_s=30)

    async def read_object(location: str) -> bytes:
        return await asyncio.to_thread(Path(location).read_bytes)

    bot = slack_bot(
        settings_for(fake, tmp_path),
        locator=EventLocator(read_object, index=None, engine=engine),
        rules=rules,
        recent=recent_from_engine(engine, Severity.HIGH, days=2),
        recent_label="the enriched history (DuckDB)",
    )
    await bot.start()
    try:
        posted = await ask(fake, f"<@{BOT_USER}> check out {event_id}", replies_wanted=2)
        text = block_texts(posted[1])
        assert "iam-user-created" in text and "found via a duckdb query" in text
        [listed] = await ask(fake, f"<@{BOT_USER}> recent 5")
        text = block_texts(listed)
        assert "The latest 1 alert" in text and event_id in text and "iam-user-created" in text
        # junk around an eventID is dropped: only the validated UUID is looked up
        posted = await ask(fake, f"<@{BOT_USER}> check out {event_id}' OR 1=1 --", replies_wanted=2)
        assert "iam-user-created" in block_texts(posted[1])
        [refused] = await ask(fake, f"<@{BOT_USER}> check out ' OR 1=1 --")
        assert "nothing was looked up" in block_texts(refused)
    finally:
        await bot.stop()

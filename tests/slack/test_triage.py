"""Triage from the alert itself, end to end with the fake Slack: press Acknowledge, Mute and
Details on a posted alert and see the message updated, the state stored and the answer in the
thread; a muted rule and principal posts nothing new while another principal still alerts; an
expired mute alerts again; a person of another workspace is refused with an ephemeral line."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, create_user
from conftest import StateOpener
from fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack, Posted, mention

from umbrellabot.app.delivery import flush_outbox
from umbrellabot.app.wiring import slack_bot, slack_notifier
from umbrellabot.config import Settings
from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.records import Event
from umbrellabot.model.triage import MuteKey
from umbrellabot.query.lookup import EventLocator
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.slack.client import slack_client
from umbrellabot.slack.triage_messages import ACK_ACTION, DETAILS_ACTION, MUTE_ACTION

CHANNEL = "CSEC00001"
EVENT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


def settings_for(fake: FakeSlack, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_app_token": APP_TOKEN,
        "slack_api_url": fake.api_url,
        "slack_channel": CHANNEL,
        "slack_post_interval_s": 0,
        "state_dir": tmp_path / "state",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def world(
    fake: FakeSlack, tmp_path: Path, request: pytest.FixtureRequest, state_opener: StateOpener
) -> AsyncIterator[dict[str, Any]]:
    """An alert posted to the channel (its event indexed, its enriched copy on disk) and the
    bot connected, both over the fake Slack (`@pytest.mark.settings(...)`: more settings)."""
    rules = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
    [rule] = [r for r in rules if r.id == "iam-user-created"]
    record = {**create_user(event_id=EVENT_ID), "recipientAccountId": ACCOUNT_A}
    copy = tmp_path / "copy.json.gz"
    copy.write_bytes(gzip.compress(orjson.dumps(record) + b"\n"))
    state = state_opener()  # SQLite, or DynamoDB on moto's server
    state.files.record_done(
        "AWSLogs/a.json.gz", "etag", str(copy), 1, [(EVENT_ID, None, "HIGH")], []
    )
    alert = alert_for(Event(record), rule)
    state.outbox.add_alerts([alert])
    marker = request.node.get_closest_marker("settings")
    settings = settings_for(fake, tmp_path, **(marker.kwargs if marker else {}))
    client = slack_client(BOT_TOKEN, base_url=fake.api_url, retry_backoff_s=0.01)
    notifier = slack_notifier(settings, state, client=client)

    async def read(location: str) -> bytes:
        return await asyncio.to_thread(Path(location).read_bytes)

    bot = slack_bot(
        settings,
        locator=EventLocator(read, index=state.events),
        rules=rules,
        state=state,
    )
    await bot.start()
    assert await flush_outbox(state.outbox, notifier, triage=state.triage) == 1
    [posted] = fake.messages_in(CHANNEL)
    yield {
        "state": state,
        "bot": bot,
        "posted": posted,
        "alert": alert,
        "notifier": notifier,
        "open_state": state_opener,
    }
    await bot.stop()


def element(posted: Posted, action_id: str) -> dict[str, Any]:
    [actions] = [b for b in posted.blocks or [] if b["type"] == "actions"]
    [found] = [e for e in actions["elements"] if e["action_id"] == action_id]
    return found


def texts(blocks: list[dict[str, Any]] | None) -> str:
    out = []
    for block in blocks or []:
        for obj in [block.get("text") or {}, *block.get("elements", []), *block.get("fields", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                out.append(str(obj.get("text", "")))
    return "\n".join(out)


def press(posted: Posted, action_id: str, option: int | None = None) -> dict[str, Any]:
    found = element(posted, action_id)
    [actions] = [b for b in posted.blocks or [] if b["type"] == "actions"]
    action: dict[str, Any] = {"action_id": action_id, "block_id": actions["block_id"]}
    if option is None:
        action.update(type="button", value=found["value"], text=found["text"])
    else:
        action.update(type="static_select", selected_option=found["options"][option])
    return action


async def test_acknowledge_updates_the_message_in_place_and_is_stored(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    posted, bot, state = world["posted"], world["bot"], world["state"]
    envelope = await fake.send_action(posted, press(posted, ACK_ACTION))
    await fake.wait_for(lambda: bool(posted.updates))
    await bot.idle()
    update_index = next(i for i, c in enumerate(fake.calls) if c.method == "chat.update")
    assert fake.acked_at[envelope] <= update_index  # acknowledged before any Web API call
    said = texts(posted.blocks)
    assert "Acknowledged by <@UALICE001> at " in said
    [actions] = [b for b in posted.blocks or [] if b["type"] == "actions"]
    assert ACK_ACTION not in {e["action_id"] for e in actions["elements"]}  # done: no button
    alert_id = int(element(posted, DETAILS_ACTION)["value"])
    ack = state.triage.ack_of(alert_id)
    assert ack is not None and ack.user == "UALICE001"
    [(stored, alert)] = state.triage.acks(10)
    assert stored == ack and alert.rule_id == "iam-user-created"
    asked = await fake.send_event(mention("<@UBOT000001> acks"))
    assert asked["envelope_id"]
    await fake.wait_for(lambda: any("Acknowledged alerts" in texts(m.blocks) for m in fake.posted))


async def test_mute_silences_that_principal_only_and_says_who_muted_what_until_when(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    posted, bot, state, alert = world["posted"], world["bot"], world["state"], world["alert"]
    await fake.send_action(posted, press(posted, MUTE_ACTION, option=0), user="UBOB00001")
    await fake.wait_for(lambda: bool(posted.updates) and bool(fake.replies_to(posted.ts)))
    await bot.idle()
    assert "Muted by <@UBOB00001> until " in texts(posted.blocks)
    [line] = fake.replies_to(posted.ts)
    assert "none is lost" in texts(line.blocks) and "iam-user-created" in texts(line.blocks)
    [mute] = state.triage.active_mutes(time.time())
    assert mute.key == MuteKey.of(alert) and 3590 < mute.until - time.time() <= 3600

    same = replace(alert, event_id="11111111-2222-3333-4444-555555555555")
    other = replace(alert, event_id="21111111-2222-3333-4444-555555555555", principal="carol")
    state.outbox.add_alerts([same, other])
    before = len(fake.messages_in(CHANNEL))
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 1
    new = fake.messages_in(CHANNEL)[before:]
    assert len(new) == 1 and "carol" in new[0].text  # the other principal still alerts
    assert state.outbox.outbox_depth() == 0  # the muted one is not waiting: it is kept, muted
    kept = {a.event_id for a in state.outbox.recent_alerts(10)}
    still_open = {p.alert.event_id for p in state.triage.open_alerts(0, 100)[1]}
    assert same.event_id in kept and same.event_id not in still_open  # kept, and muted

    # `mutes` lists it; `unmute` ends it; what comes next alerts again
    await fake.send_event(mention("<@UBOT000001> mutes"))
    await fake.wait_for(lambda: any("Active mutes (1)" in texts(m.blocks) for m in fake.posted))
    await fake.send_event(mention(f"<@UBOT000001> unmute {mute.id}"))
    await fake.wait_for(
        lambda: any(f"Mute {mute.id} ended" in texts(m.blocks) for m in fake.posted)
    )
    assert state.triage.active_mutes(time.time()) == []
    again = replace(alert, event_id="31111111-2222-3333-4444-555555555555")
    state.outbox.add_alerts([again])
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 1


async def test_an_expired_mute_alerts_again(fake: FakeSlack, world: dict[str, Any]) -> None:
    state, alert = world["state"], world["alert"]
    now = time.time()
    state.triage.add_mute(MuteKey.of(alert), now - 1, "UBOB00001", now - 3601, None)
    state.outbox.add_alerts([replace(alert, event_id="41111111-2222-3333-4444-555555555555")])
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 1


async def test_details_answers_in_the_alerts_thread(fake: FakeSlack, world: dict[str, Any]) -> None:
    posted, bot = world["posted"], world["bot"]
    await fake.send_action(posted, press(posted, DETAILS_ACTION))
    await fake.wait_for(lambda: len(fake.replies_to(posted.ts)) >= 2)  # looking up, the story
    await bot.idle()
    story = fake.replies_to(posted.ts)[-1]
    assert EVENT_ID in story.text and "iam-user-created" in texts(story.blocks)


async def test_a_person_of_another_workspace_is_refused_and_nothing_is_stored(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    posted, bot, state = world["posted"], world["bot"], world["state"]
    await fake.send_action(posted, press(posted, ACK_ACTION), user="UEXT00001", team="TOTHER01")
    await fake.wait_for(lambda: bool(fake.ephemeral))
    await bot.idle()
    [line] = fake.ephemeral
    assert line["user"] == "UEXT00001" and "workspace I am installed in" in line["text"] + str(
        line.get("blocks")
    )
    assert not posted.updates and state.triage.acks(10) == []
    external = {**mention("<@UBOT000001> status", user="UEXT00001"), "user_team": "TOTHER01"}
    await fake.send_event(external)
    await fake.wait_for(
        lambda: any("workspace I am installed in" in texts(m.blocks) for m in fake.posted)
    )


async def test_a_forged_value_names_no_alert(fake: FakeSlack, world: dict[str, Any]) -> None:
    posted, bot = world["posted"], world["bot"]
    forged = {"action_id": ACK_ACTION, "type": "button", "value": "<!channel> 9999"}
    await fake.send_action(posted, forged)
    await fake.wait_for(lambda: bool(fake.ephemeral))
    await bot.idle()
    assert "no longer in my state" in fake.ephemeral[0]["text"] and not posted.updates


def test_one_severity_vocabulary_in_alerts_and_replies() -> None:
    from umbrellabot.model.severity import Severity
    from umbrellabot.slack.alert_messages import severity_label
    from umbrellabot.slack.replies import severity_heading

    for severity in Severity:
        assert severity_label(severity) == severity_heading(severity)
    assert len({severity_label(s).split()[0] for s in Severity}) == len(Severity)


async def test_the_app_home_shows_open_alerts_mutes_and_the_last_cycle(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    posted, bot, state = world["posted"], world["bot"], world["state"]
    cycle = state.cycles.start_cycle()
    state.cycles.finish_cycle(cycle, files=3, records=18, alerts=1)
    opened = {"type": "app_home_opened", "user": "UALICE001", "channel": "D0HOME001", "tab": "home"}
    await fake.send_event(opened)
    await fake.wait_for(lambda: len(fake.views) == 1)
    home = texts(fake.views[0]["view"]["blocks"])
    assert fake.views[0]["user_id"] == "UALICE001" and fake.views[0]["view"]["type"] == "home"
    assert "*Open alerts* (last 7 days, not acknowledged)" in home and "1 high" in home
    assert "IAM user created" in home and "*Active mutes:* none" in home
    assert "Files" in str(fake.views[0]["view"]["blocks"])  # the last cycle's counts

    await fake.send_action(posted, press(posted, MUTE_ACTION, option=1))
    await fake.wait_for(lambda: bool(posted.updates))
    await fake.send_action(posted, press(posted, ACK_ACTION))
    await fake.wait_for(lambda: len(posted.updates) >= 2)
    await bot.idle()
    await fake.send_event(opened)
    await fake.wait_for(lambda: len(fake.views) == 2)
    home = texts(fake.views[1]["view"]["blocks"])
    assert "*Open alerts* (last 7 days): none" in home  # acknowledged: no longer open
    assert "*Active mutes (1)*" in home and "iam-user-created" in home


def mrkdwn_objects(blocks: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            if item.get("type") == "mrkdwn":
                found.append(item)
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(blocks)
    return found


async def test_every_reply_kind_is_inert(fake: FakeSlack, world: dict[str, Any]) -> None:
    """Every message, update, ephemeral line and Home view the bot sends: each mrkdwn object
    `verbatim`, `link_names` off; hostile log text never becomes a mention."""
    posted, bot, state, alert = world["posted"], world["bot"], world["state"], world["alert"]
    hostile = replace(
        alert,
        event_id="51111111-2222-3333-4444-555555555555",
        principal="<!channel> *bold* <@U999> <https://evil.example|click>",
    )
    state.outbox.add_alerts([hostile])
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 1
    hostile_post = fake.messages_in(CHANNEL)[-1]
    for text in (
        "help",
        "status",
        "recent",
        "mutes",
        "acks",
        "unmute 42",
        f"check out {EVENT_ID}",
        "check out 01234567-0123-0123-0123-0123456789ab",
        "check out junk",
        "what?",
    ):
        await fake.send_event(mention(f"<@UBOT000001> {text}"))
    await fake.send_action(hostile_post, press(hostile_post, MUTE_ACTION, option=2))
    await fake.send_action(hostile_post, press(hostile_post, ACK_ACTION))
    await fake.send_action(posted, press(posted, DETAILS_ACTION))
    await fake.send_action(posted, press(posted, ACK_ACTION), user="UEXT00001", team="TOTHER01")
    await fake.send_event({"type": "app_home_opened", "user": "UALICE001", "tab": "home"})
    await fake.wait_for(lambda: len(fake.views) == 1 and bool(fake.ephemeral))
    await fake.wait_for(lambda: len(hostile_post.updates) >= 2)
    await bot.idle()
    kinds = {call.method for call in fake.calls}
    assert {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish"} <= kinds
    sent = [
        c
        for c in fake.calls
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish")
    ]
    assert len(sent) >= 20
    for call in sent:
        data = call.data
        blocks = data.get("blocks") or (data.get("view") or {})
        if isinstance(blocks, str):
            blocks = orjson.loads(blocks)
        objects = mrkdwn_objects(blocks)
        assert objects, call.method
        assert all(obj.get("verbatim") is True for obj in objects), (call.method, data)
        if call.method == "chat.postMessage":
            assert str(data.get("link_names", "false")).lower() in ("false", "0"), data
        text = " ".join(str(obj["text"]) for obj in objects)
        assert "<!channel>" not in text and "<@U999>" not in text
        assert "<https://evil.example" not in text


@pytest.mark.settings(allowed_muters=["UBOB00001"])
async def test_only_allowed_muters_may_mute(fake: FakeSlack, world: dict[str, Any]) -> None:
    posted, bot, state = world["posted"], world["bot"], world["state"]
    await fake.send_action(posted, press(posted, MUTE_ACTION, option=0), user="UALICE001")
    await fake.wait_for(lambda: bool(fake.ephemeral))
    await bot.idle()
    assert "ALLOWED_MUTERS" in fake.ephemeral[0]["text"] and not posted.updates
    assert state.triage.active_mutes(time.time()) == []
    await fake.send_action(posted, press(posted, MUTE_ACTION, option=0), user="UBOB00001")
    await fake.wait_for(lambda: bool(posted.updates))
    await bot.idle()
    assert len(state.triage.active_mutes(time.time())) == 1


async def test_a_guest_is_refused_by_mention_and_by_button(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    posted, bot, state = world["posted"], world["bot"], world["state"]
    fake.guests.add("UGUEST001")
    await fake.send_event(mention("<@UBOT000001> status", user="UGUEST001"))
    await fake.wait_for(
        lambda: any("I do not answer guests" in texts(m.blocks) for m in fake.posted)
    )
    await fake.send_action(posted, press(posted, ACK_ACTION), user="UGUEST001")
    await fake.wait_for(lambda: bool(fake.ephemeral))
    await bot.idle()
    assert "guests" in str(fake.ephemeral[0]) and state.triage.acks(5) == []


@pytest.mark.settings(allowed_usergroups=["S0SEC0001"])
async def test_only_members_of_the_allowed_usergroups_get_an_answer(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    fake.usergroups["S0SEC0001"] = {"UALICE001"}
    await fake.send_event(mention("<@UBOT000001> status", user="UBOB00001"))
    await fake.wait_for(lambda: any("ALLOWED_USERGROUPS" in texts(m.blocks) for m in fake.posted))
    await fake.send_event(mention("<@UBOT000001> status", user="UALICE001"))
    await fake.wait_for(lambda: any("Last ingest cycle" in texts(m.blocks) for m in fake.posted))
    calls = [c for c in fake.calls if c.method == "usergroups.users.list"]
    assert len(calls) == 1  # cached


@pytest.mark.settings(allow_guests=True)
async def test_guests_are_answered_with_allow_guests(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    fake.guests.add("UGUEST001")
    await fake.send_event(mention("<@UBOT000001> status", user="UGUEST001"))
    await fake.wait_for(lambda: any("Last ingest cycle" in texts(m.blocks) for m in fake.posted))
    assert not any(c.method == "users.info" for c in fake.calls)


async def test_a_redelivered_mention_is_answered_once(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    """Slack retries an event it thinks was not acknowledged (`retry_attempt`, same event id):
    one answer, however many times it arrives."""
    bot = world["bot"]
    event = mention("<@UBOT000001> help", ts="1764700000.000100")
    await fake.send_event(event, event_id="EvRETRIED01")
    await fake.send_event(event, event_id="EvRETRIED01", retry_attempt=1)
    await fake.send_event(event, event_id="EvRETRIED01", retry_attempt=2)
    await fake.wait_for(lambda: bot.envelopes_handled >= 3)
    await bot.idle()
    answers = [m for m in fake.posted if m.thread_ts == "1764700000.000100"]
    assert len(answers) == 1 and "What I can do" in texts(answers[0].blocks)


@pytest.mark.settings(slack_rollup_threshold=1)
async def test_acknowledging_a_rollup_parent_acknowledges_its_thread(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    """The first alert was posted on its own (threshold 1); the next three roll up. The
    parent's Acknowledge acknowledges the three in its thread, not the one posted on its own;
    alerts that come later are counted apart until someone acknowledges again."""
    state, alert, bot = world["state"], world["alert"], world["bot"]
    first = world["posted"]

    def burst(start: int, n: int) -> list[Any]:
        return [
            replace(alert, event_id=f"{i:08d}-2222-3333-4444-555555555555")
            for i in range(start, start + n)
        ]

    state.outbox.add_alerts(burst(1, 3))
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 3
    [_, parent] = fake.messages_in(CHANNEL)
    assert "4* alerts for" in texts(parent.blocks)
    [actions] = [b for b in parent.blocks or [] if b["type"] == "actions"]
    assert {e["action_id"] for e in actions["elements"]} == {ACK_ACTION, MUTE_ACTION}

    await fake.send_action(parent, press(parent, ACK_ACTION), user="UBOB00001")
    await fake.wait_for(lambda: bool(parent.updates))
    await bot.idle()
    said = texts(parent.blocks)
    assert "Acknowledged by <@UBOB00001>" in said and "the 3 alerts in this thread then" in said
    [actions] = [b for b in parent.blocks or [] if b["type"] == "actions"]
    assert ACK_ACTION not in {e["action_id"] for e in actions["elements"]}
    acked = {a.event_id for _, a in state.triage.acks(10)}
    assert acked == {a.event_id for a in burst(1, 3)}  # the thread, not the first alert
    first_id = int(element(first, DETAILS_ACTION)["value"])
    assert state.triage.ack_of(first_id) is None

    # two more: the count grows, the acknowledgement stays and says what came since
    state.outbox.add_alerts(burst(4, 2))
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 2
    said = texts(parent.blocks)
    assert "6* alerts for" in said and "2 came since" in said and "<@UBOB00001>" in said
    await fake.send_action(parent, press(parent, ACK_ACTION))
    await fake.wait_for(lambda: "the 5 alerts in this thread then" in texts(parent.blocks))
    await bot.idle()
    assert len(state.triage.acks(10)) == 5
    opened, _ = state.triage.open_alerts(0, 10)
    assert sum(opened.values()) == 1  # only the alert posted on its own is open


@pytest.mark.settings(slack_rollup_threshold=1)
async def test_muting_from_a_rollup_parent_keeps_it_a_parent(
    fake: FakeSlack, world: dict[str, Any]
) -> None:
    state, alert, bot = world["state"], world["alert"], world["bot"]
    state.outbox.add_alerts(
        [replace(alert, event_id=f"{i:08d}-2222-3333-4444-555555555555") for i in (1, 2)]
    )
    assert await flush_outbox(state.outbox, world["notifier"], triage=state.triage) == 2
    [_, parent] = fake.messages_in(CHANNEL)
    await fake.send_action(parent, press(parent, MUTE_ACTION, option=1))
    await fake.wait_for(lambda: bool(parent.updates) and bool(fake.replies_to(parent.ts)[1:]))
    await bot.idle()
    said = texts(parent.blocks)
    assert "Muted by <@UALICE001>" in said and "alerts for" in said  # still the roll-up
    [mute] = state.triage.active_mutes(time.time())
    assert mute.key == MuteKey.of(alert)


async def test_two_bots_on_one_state_answer_a_mention_and_its_retry_once(
    fake: FakeSlack, world: dict[str, Any], tmp_path: Path
) -> None:
    """Several workers run the bot on one state: Slack hands the mention to one connection and
    its retry to another (the fake spreads events over them); the first to claim it answers."""
    first = world["bot"]
    other_state = world["open_state"]()  # another process's handle on the state
    second = slack_bot(
        settings_for(fake, tmp_path),
        locator=EventLocator(lambda location: asyncio.sleep(0, b""), index=other_state.events),
        rules=first.rules,
        state=other_state,
    )
    await second.start()
    try:
        event = mention("<@UBOT000001> help", ts="1764700000.000200")
        for attempt in range(4):  # on the connections in turn: both bots see it
            await fake.send_event(event, event_id="EvSHARED001", retry_attempt=attempt)
        await fake.wait_for(lambda: first.envelopes_handled + second.envelopes_handled >= 4)
        await first.idle()
        await second.idle()
        assert first.envelopes_handled and second.envelopes_handled
        answers = [m for m in fake.posted if m.thread_ts == "1764700000.000200"]
        assert len(answers) == 1 and "What I can do" in texts(answers[0].blocks)
    finally:
        await second.stop()
        other_state.close()

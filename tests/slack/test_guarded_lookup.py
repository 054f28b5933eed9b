"""Pasted UUIDs cannot run up a query bill: lookups that reach the engine are counted per user
(LOOKUP_RATE_PER_MINUTE) and a miss is remembered; the state index stays free; the reply says
which stopped a lookup. Over the bot and the fake Slack too."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack, mention

from umbrellabot.app.wiring import slack_bot
from umbrellabot.config import Settings
from umbrellabot.query.duckdb_engine import DuckDBEngine
from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import Query, Row
from umbrellabot.slack.guarded_lookup import MISS_TTL_S, GuardedLookup
from umbrellabot.slack.text import Message
from umbrellabot.storage.sqlite import SqliteState


class Counting:
    """The DuckDB engine over an empty folder, counting the queries that reach it."""

    name = "duckdb"

    def __init__(self, root: Path) -> None:
        self.inner = DuckDBEngine(root)
        self.queries = 0

    async def run(self, query: Query) -> list[Row]:
        self.queries += 1
        return await self.inner.run(query)


async def unread(location: str) -> bytes:
    raise FileNotFoundError(location)


async def test_the_rate_per_user_and_the_remembered_miss(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    engine = Counting(tmp_path)
    now = [1000.0]
    lookup = GuardedLookup(
        EventLocator(unread, index=state.events, engine=engine),
        state.lookups,
        per_minute=3,
        clock=lambda: now[0],
    )
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for event_id in ids[:3]:
        assert await lookup.find(event_id, "UALICE001") is None
    assert engine.queries == 3
    stopped = await lookup.find(ids[3], "UALICE001")
    assert (
        isinstance(stopped, Message)
        and "LOOKUP_RATE_PER_MINUTE" in stopped.blocks[0]["text"]["text"]
    )
    assert engine.queries == 3  # not asked
    assert await lookup.find(ids[3], "UBOB00001") is None and engine.queries == 4  # per user
    again = await lookup.find(ids[0], "UBOB00001")
    assert (
        isinstance(again, Message) and "less than 10 minutes ago" in again.blocks[0]["text"]["text"]
    )
    assert engine.queries == 4
    now[0] += 61  # a minute later the user may ask again; the miss is still remembered
    assert await lookup.find(ids[4], "UALICE001") is None and engine.queries == 5
    assert isinstance(await lookup.find(ids[1], "UALICE001"), Message)
    now[0] += MISS_TTL_S  # and then it is asked again (CloudTrail delivers late)
    assert await lookup.find(ids[1], "UALICE001") is None and engine.queries == 6
    state.close()


async def test_the_bot_says_a_miss_was_looked_up_a_moment_ago(
    fake: FakeSlack, tmp_path: Path
) -> None:
    state = SqliteState(tmp_path / "state")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fake.api_url,
        state_dir=tmp_path / "state",
    )
    engine = Counting(tmp_path)
    bot = slack_bot(
        settings,
        locator=EventLocator(unread, index=state.events, engine=engine),
        rules=[],
        state=state,
    )
    await bot.start()
    try:
        missing = str(uuid.uuid4())

        def said(text: str) -> bool:
            return any(text in str(m.blocks) for m in fake.posted)

        await fake.send_event(mention(f"<@UBOT000001> check out {missing}"))
        await fake.wait_for(lambda: said("I found no event"))
        await fake.send_event(mention(f"<@UBOT000001> check out {missing}"))
        await fake.wait_for(lambda: said("less than 10 minutes ago"))
        await bot.idle()
        assert engine.queries == 1
    finally:
        await bot.stop()
        state.close()


def test_settings_default_to_six_a_minute() -> None:
    settings: Any = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.lookup_rate_per_minute == 6

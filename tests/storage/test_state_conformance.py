"""What every state backend must do, as `storage.ports` says it: each case runs on every
backend of `state_opener` (conftest.py): SQLite, and DynamoDB on moto's server. Two handles on
one state stand for two processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from builders import create_user
from conftest import StateOpener

from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.alerts import Alert, dedup_key
from umbrellabot.model.own_alerts import FILE_ABANDONED
from umbrellabot.model.records import Event
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules
from umbrellabot.storage.ports import Delivery, RollupWindow, StateBackend

Opener = Callable[[], StateBackend]


@pytest.fixture
def opener(state_opener: StateOpener) -> Opener:
    return state_opener


@pytest.fixture(scope="module")
def rule() -> Rule:
    [found] = [
        r
        for r in load_rules([default_rules_path()], {"allowed_countries": ["US"]})
        if r.id == "iam-user-created"
    ]
    return found


def alerts(rule: Rule, *event_ids: str) -> list[Alert]:
    return [alert_for(Event(create_user(event_id)), rule) for event_id in event_ids]


# -- the file ledger ---------------------------------------------------------------------


def test_a_file_lease_is_one_process_s_until_it_expires_or_is_released(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.files.claim("AWSLogs/a.json.gz", "p1", 60)
    assert one.files.claim("AWSLogs/a.json.gz", "p1", 60)  # renewed by its holder
    assert not two.files.claim("AWSLogs/a.json.gz", "p2", 60)
    assert two.files.lease_owners() == {"p1"}
    one.files.release("AWSLogs/a.json.gz", "p1")
    assert two.files.claim("AWSLogs/a.json.gz", "p2", 0.2)
    time.sleep(0.3)  # p2 died: its lease runs out
    assert one.files.claim("AWSLogs/a.json.gz", "p1", 60)
    assert one.files.release_all("p1") == 1
    assert one.files.lease_owners() == set()


def test_a_file_is_done_once_with_its_alerts_once(opener: Opener, rule: Rule) -> None:
    one, two = opener(), opener()
    found = alerts(rule, "e-1", "e-2")
    rows = [("e-1", "2026-12-03T10:00:00Z", "HIGH"), ("e-2", None, "HIGH")]
    assert one.files.record_done("k", "etag", "processed/k", 2, rows, found) == 2
    assert two.files.record_done("k", "etag", "processed/k", 2, rows, found) == 0  # again
    state = two.files.file_states(["k"])["k"]
    assert (state.status, state.etag, state.attempts) == ("done", "etag", 0)
    assert two.events.find_event("e-1") is not None
    assert len(two.outbox.pending_alerts()) == 2


def test_failures_count_only_when_the_file_is_at_fault(opener: Opener) -> None:
    state = opener()
    kept = state.files.record_failure(
        "k", None, "S3 timed out", counts=False, max_attempts=2, retry_base_s=0
    )
    assert (kept.status, kept.attempts) == ("failed", 0)
    first = state.files.record_failure(
        "k", None, "not gzip or JSON", counts=True, max_attempts=2, retry_base_s=0
    )
    assert (first.status, first.attempts) == ("failed", 1)
    last = state.files.record_failure(
        "k", None, "not gzip or JSON", counts=True, max_attempts=2, retry_base_s=0
    )
    assert (last.status, last.attempts) == ("abandoned", 2)
    assert [f.key for f in state.files.abandoned_files()] == ["k"]
    assert [p.alert.rule_id for p in state.outbox.pending_alerts()] == [FILE_ABANDONED]
    assert state.files.retry(["k"]) == ["k"]
    assert state.files.abandoned_files() == []


# -- the outbox --------------------------------------------------------------------------


def test_an_alert_is_in_the_outbox_once_and_claimed_by_one_process(
    opener: Opener, rule: Rule
) -> None:
    one, two = opener(), opener()
    assert one.outbox.add_alerts(alerts(rule, "e-1", "e-2")) == 2
    assert two.outbox.add_alerts(alerts(rule, "e-1")) == 0  # its dedup key is known
    mine = one.outbox.claim_pending("p1", limit=1)
    theirs = two.outbox.claim_pending("p2")
    assert len(mine) == len(theirs) == 1 and mine[0].id != theirs[0].id
    one.outbox.mark_delivered([mine[0].id])
    two.outbox.release_claims("p2")
    again = one.outbox.claim_pending("p1")
    assert [p.id for p in again] == [theirs[0].id] and again[0].attempts == 0
    assert one.outbox.outbox_depth() == 1


def test_a_dead_claimant_s_alerts_are_looked_for_before_they_are_posted_again(
    opener: Opener, rule: Rule
) -> None:
    one, two = opener(), opener()
    one.outbox.add_alerts(alerts(rule, "e-1"))
    assert [p.attempts for p in one.outbox.claim_pending("dead")] == [0]
    assert two.outbox.claim_owners() == {"dead"}
    two.outbox.release_claims("dead", maybe_told=True)
    assert [p.attempts for p in two.outbox.claim_pending("alive")] == [1]


def test_a_posted_alert_s_message_is_found_by_its_dedup_key(opener: Opener, rule: Rule) -> None:
    state = opener()
    state.outbox.add_alerts(alerts(rule, "e-1"))
    [pending] = state.outbox.pending_alerts()
    state.outbox.record_message(pending.id, "C1", "1764700000.000100")
    assert state.outbox.message_of(dedup_key(pending.alert)) == ("C1", "1764700000.000100")


# -- work done once, the bot's claims, the digest, silence ---------------------------------


def test_the_scheduled_work_has_one_holder_at_a_time(opener: Opener) -> None:
    one, two = opener(), opener()
    now = time.time()
    assert one.cycles.hold_duty("scheduled-work", "p1", 10, now)
    assert one.cycles.hold_duty("scheduled-work", "p1", 10, now + 5)  # renewed
    assert not two.cycles.hold_duty("scheduled-work", "p2", 10, now + 14)
    assert two.cycles.hold_duty("scheduled-work", "p2", 10, now + 16)  # p1's lease ran out
    assert not one.cycles.hold_duty("scheduled-work", "p1", 10, now + 17)
    two.cycles.release_duty("scheduled-work", "p2")
    assert one.cycles.hold_duty("scheduled-work", "p1", 10, now + 18)  # handed over at once


def test_a_message_is_claimed_to_answer_once(opener: Opener) -> None:
    one, two = opener(), opener()
    now = time.time()
    assert one.lookups.claim_mention("C1", "1764700000.000100", now)
    assert not two.lookups.claim_mention("C1", "1764700000.000100", now + 1)
    assert two.lookups.claim_mention("C1", "1764700000.000200", now + 1)


def test_lookups_are_limited_per_user_and_misses_remembered(opener: Opener) -> None:
    one, two = opener(), opener()
    now = time.time()
    assert one.lookups.take_lookup("U1", now, 2)
    assert two.lookups.take_lookup("U1", now, 2)
    assert not one.lookups.take_lookup("U1", now + 1, 2)  # the limit is shared
    assert one.lookups.take_lookup("U1", now + 61, 2)
    two.lookups.remember_miss("e-9", now + 600)
    assert one.lookups.known_miss("e-9", now) and not one.lookups.known_miss("e-9", now + 601)


def test_a_day_s_digest_is_recorded_once(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.digests.record_digest("2026-12-03", time.time())
    assert not two.digests.record_digest("2026-12-03", time.time())
    assert two.digests.digest_posted("2026-12-03")


def test_deliveries_are_kept_per_account(opener: Opener) -> None:
    one, two = opener(), opener()
    seen = Delivery("111122223333", "AWSLogs/111122223333/x.json.gz", 1764700000.0)
    one.deliveries.save_deliveries([seen])
    assert two.deliveries.deliveries() == {"111122223333": seen}
    told = Delivery(seen.account, seen.last_key, seen.last_modified, "silent-key")
    two.deliveries.save_deliveries([told])
    assert one.deliveries.deliveries()["111122223333"].silent_alert == "silent-key"


def test_the_cycle_log_says_when_a_cycle_last_succeeded(opener: Opener) -> None:
    state = opener()
    failed = state.cycles.start_cycle()
    state.cycles.finish_cycle(failed, error="S3 refused")
    assert state.cycles.last_success_at() is None
    done = state.cycles.start_cycle()
    state.cycles.finish_cycle(done, files=2, records=10)
    last: dict[str, Any] | None = state.cycles.last_cycle()
    assert last is not None and last["files"] == 2
    assert state.cycles.last_success_at() is not None


# -- roll-ups: several processes add to one --------------------------------------------------


def test_a_roll_up_has_one_parent_and_counts_what_every_process_added(
    opener: Opener, rule: Rule
) -> None:
    one, two = opener(), opener()
    now = time.time()
    mine = RollupWindow("C1", "iam-user-created", "alice", now - 10)
    theirs = RollupWindow("C1", "iam-user-created", "alice", now - 5)  # started meanwhile
    one.rollups.save_rollup(mine)
    two.rollups.save_rollup(theirs)
    assert one.rollups.claim_parent(mine, "p1", now, 60)
    assert not two.rollups.claim_parent(theirs, "p2", now, 60)  # p1 posts the parent
    assert one.rollups.claim_parent(mine, "p1", now + 1, 60)  # its own claim, again
    one.rollups.save_rollup(replace(mine, parent_channel="C1", parent_ts="1764700000.000100"))
    found = two.rollups.rollup_window("C1", "iam-user-created", "alice", now - 600)
    assert found is not None and found.parent_ts == "1764700000.000100"  # not their newer one
    assert not two.rollups.claim_parent(found, "p2", now + 120, 60)  # it has its parent
    # both tell alerts in its thread at once, each from the count it read: none is lost
    one.outbox.add_alerts(alerts(rule, *(f"e-{n}" for n in range(5))))
    ids = [p.id for p in one.outbox.pending_alerts()]
    one.rollups.save_rollup(replace(found, alerts=found.alerts + 2), ids[:2])
    two.rollups.save_rollup(replace(found, alerts=found.alerts + 3), ids[2:])
    after = one.rollups.rollup_by_parent("C1", "1764700000.000100")
    assert after is not None and after.alerts == 5
    assert one.outbox.pending_alerts() == []

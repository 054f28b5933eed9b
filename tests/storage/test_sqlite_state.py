"""The SQLite state's repositories."""

from __future__ import annotations

from pathlib import Path

from umbrellabot.storage.sqlite import SqliteState


def test_event_index_prunes_aged_files(tmp_path: Path) -> None:
    import time as clock

    store = SqliteState(tmp_path)
    store.files.record_done(
        "k1", "e", "processed/k1", 1, [("ev-1", "2026-11-29T10:00:00Z", "HIGH")], []
    )
    store.files.record_done(
        "k2", "e", "processed/k2", 1, [("ev-2", "2026-11-29T10:00:00Z", None)], []
    )
    store.database.execute(
        "UPDATE files SET updated_at = ? WHERE key = 'k1'", (clock.time() - 100,)
    )
    found = store.events.find_event("ev-1")
    assert found is not None and found.key == "processed/k1" and found.priority == "HIGH"
    assert store.events.prune_events(clock.time() - 50) == 1
    assert store.events.find_event("ev-1") is None
    assert store.events.find_event("ev-2") is not None
    store.close()


def test_a_file_lease_is_one_owners_until_it_expires_or_is_released(tmp_path: Path) -> None:
    state = SqliteState(tmp_path)
    files = state.files
    assert files.claim("k", "a", ttl_s=60)
    assert not files.claim("k", "b", ttl_s=60)  # held by a
    assert files.claim("k", "a", ttl_s=60)  # a renews
    files.release("k", "b")  # not b's to release
    assert not files.claim("k", "b", ttl_s=60)
    files.release("k", "a")
    assert files.claim("k", "b", ttl_s=-1)  # b's, already expired
    assert files.claim("k", "a", ttl_s=60)  # so a takes it
    assert files.lease_owners() == {"a"} and files.release_all("a") == 1
    state.close()


def test_outbox_rows_claimed_by_one_process_are_not_handed_to_another(tmp_path: Path) -> None:
    from builders import create_user

    from umbrellabot.enrich.enrichment import alert_for
    from umbrellabot.model.records import Event
    from umbrellabot.rules.rule import default_rules_path, load_rules

    rules = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
    [rule] = [r for r in rules if r.id == "iam-user-created"]
    state = SqliteState(tmp_path)
    alerts = [alert_for(Event(create_user(f"e-{n}")), rule) for n in range(3)]
    assert state.outbox.add_alerts(alerts) == 3
    first = state.outbox.claim_pending("a", limit=2)
    assert [p.alert.event_id for p in first] == ["e-0", "e-1"]
    second = state.outbox.claim_pending("b")
    assert [p.alert.event_id for p in second] == ["e-2"]  # a's two are not b's to deliver
    state.outbox.mark_delivered([first[0].id])
    state.outbox.release_claims("a")  # what a did not deliver goes back
    assert [p.alert.event_id for p in state.outbox.claim_pending("b")] == ["e-1", "e-2"]
    assert state.outbox.claim_owners() == {"b"}
    state.close()


def test_a_claim_of_a_dead_process_is_taken_over_as_maybe_told(tmp_path: Path) -> None:
    """The process that died while delivering may have posted: whoever takes its claim over
    gets the alert as attempted once, so the notifier looks in Slack before posting."""
    from builders import create_user

    from umbrellabot.enrich.enrichment import alert_for
    from umbrellabot.model.records import Event
    from umbrellabot.rules.rule import default_rules_path, load_rules

    rules = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
    [rule] = [r for r in rules if r.id == "iam-user-created"]
    state = SqliteState(tmp_path)
    state.outbox.add_alerts([alert_for(Event(create_user(f"e-{n}")), rule) for n in range(2)])
    assert [p.attempts for p in state.outbox.claim_pending("dead", limit=1)] == [0]
    state.outbox.release_claims("dead", maybe_told=True)
    taken = state.outbox.claim_pending("alive")
    assert [(p.alert.event_id, p.attempts) for p in taken] == [("e-0", 1), ("e-1", 0)]
    state.outbox.release_claims("alive")  # its own, never posted: not "maybe told"
    assert [p.attempts for p in state.outbox.claim_pending("alive")] == [0, 0]
    state.close()


def test_retention_prunes_every_table_however_old_the_rows(tmp_path: Path) -> None:
    import time as clock

    from builders import create_user

    from umbrellabot.enrich.enrichment import alert_for
    from umbrellabot.model.records import Event
    from umbrellabot.rules.rule import default_rules_path, load_rules

    rules = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
    [rule] = [r for r in rules if r.id == "iam-user-created"]
    state = SqliteState(tmp_path)
    long_ago, now = clock.time() - 400 * 86400, clock.time()
    for key, event_id in (("old", "ev-old"), ("new", "ev-new")):
        alert = alert_for(Event(create_user(event_id)), rule)
        state.files.record_done(key, "e", f"processed/{key}", 1, [(event_id, None, None)], [alert])
        state.cycles.finish_cycle(state.cycles.start_cycle(), files=1)
    state.files.claim("leased", "gone", ttl_s=-1)  # an expired lease
    db = state.database
    db.execute("UPDATE files SET updated_at = ? WHERE key = 'old'", (long_ago,))
    db.execute("UPDATE outbox SET created_at = ? WHERE event_id = 'ev-old'", (long_ago,))
    db.execute("UPDATE cycles SET started_at = ? WHERE id = 1", (long_ago,))
    cutoff = now - 90 * 86400  # far more than a week before the entries' age: pruned anyway
    assert state.events.prune_events(cutoff) == 1
    assert state.files.prune_files(cutoff) == 1
    assert state.outbox.prune_outbox(cutoff) == 1
    assert state.cycles.prune_cycles(cutoff) == 1
    assert state.events.find_event("ev-old") is None and state.events.find_event("ev-new")
    assert set(state.files.file_states([""])) == {"new"}
    assert [p.alert.event_id for p in state.outbox.pending_alerts()] == ["ev-new"]
    assert state.files.lease_owners() == set()
    state.close()


def test_deliveries_and_alert_messages_persist_and_an_old_state_gains_them(
    tmp_path: Path,
) -> None:
    import sqlite3

    from umbrellabot.model.own_alerts import file_abandoned
    from umbrellabot.storage.ports import Delivery

    with sqlite3.connect(tmp_path / "umbrellabot.sqlite3") as old:  # a version-4 outbox
        old.executescript(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, dedup_key TEXT NOT NULL UNIQUE,"
            " rule_id TEXT NOT NULL, event_id TEXT, severity INTEGER NOT NULL, payload TEXT"
            " NOT NULL, created_at REAL NOT NULL, delivered_at REAL, attempts INTEGER NOT NULL"
            " DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT,"
            " claimed_by TEXT, claimed_until REAL); PRAGMA user_version=4;"
        )
    store = SqliteState(tmp_path)
    assert store.deliveries.deliveries() == {}
    first = Delivery("111111111111", "AWSLogs/a.json.gz", 100.0)
    store.deliveries.save_deliveries([first, Delivery("222222222222", "AWSLogs/b.json.gz", 5.0)])
    store.deliveries.save_deliveries([Delivery("111111111111", "AWSLogs/c.json.gz", 200.0, "k")])
    known = store.deliveries.deliveries()
    assert known["111111111111"] == Delivery("111111111111", "AWSLogs/c.json.gz", 200.0, "k")
    assert known["222222222222"].last_modified == 5.0

    alert = file_abandoned("AWSLogs/a.json.gz", "corrupt", 1.0)
    assert store.outbox.add_alerts([alert]) == 1
    [pending] = store.outbox.pending_alerts()
    assert store.outbox.message_of("nothing") is None
    store.outbox.record_message(pending.id, "C123", "1700000000.000100")
    from umbrellabot.model.alerts import dedup_key

    assert store.outbox.message_of(dedup_key(alert)) == ("C123", "1700000000.000100")
    store.close()


def test_triage_acks_once_mutes_extend_and_end_and_an_old_state_gains_them(
    tmp_path: Path,
) -> None:
    import sqlite3

    from umbrellabot.model.own_alerts import file_abandoned
    from umbrellabot.model.triage import MuteKey

    with sqlite3.connect(tmp_path / "umbrellabot.sqlite3") as old:  # a version-5 outbox
        old.executescript(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, dedup_key TEXT NOT NULL UNIQUE,"
            " rule_id TEXT NOT NULL, event_id TEXT, severity INTEGER NOT NULL, payload TEXT"
            " NOT NULL, created_at REAL NOT NULL, delivered_at REAL, attempts INTEGER NOT NULL"
            " DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT,"
            " claimed_by TEXT, claimed_until REAL, message_channel TEXT, message_ts TEXT);"
            " PRAGMA user_version=5;"
        )
    store = SqliteState(tmp_path)
    triage = store.triage
    store.outbox.add_alerts([file_abandoned("AWSLogs/a.json.gz", "corrupt", 1.0)])
    [pending] = store.outbox.pending_alerts()
    assert triage.alert_by_id(pending.id) == pending and triage.alert_by_id(999) is None

    first = triage.acknowledge(pending.id, "UALICE001", 10.0)
    assert triage.acknowledge(pending.id, "UBOB00001", 20.0) == first  # the first one stays
    assert [ack for ack, _ in triage.acks(5)] == [first]

    key = MuteKey("r", "alice", "111111111111")
    mute = triage.add_mute(key, 100.0, "UBOB00001", 10.0, pending.id)
    again = triage.add_mute(key, 200.0, "UCAROL001", 50.0, None)
    assert again.id == mute.id and again.until == 200.0  # one mute, extended
    shorter = triage.add_mute(key, 150.0, "UCAROL001", 60.0, None)
    assert shorter.until == 200.0  # never shortened by a later, shorter one
    other = triage.add_mute(MuteKey("r", "", "111111111111"), 300.0, "U1", 10.0, None)
    assert {m.id for m in triage.active_mutes(90.0)} == {mute.id, other.id}
    assert triage.end_mute(mute.id, 95.0) is not None and triage.end_mute(mute.id, 96.0) is None
    assert [m.id for m in triage.active_mutes(96.0)] == [other.id]
    assert triage.add_mute(key, 500.0, "U1", 97.0, None).id != mute.id  # ended: a new one

    triage.mark_muted([pending.id], other.id)
    assert store.outbox.pending_alerts() == [] and store.outbox.outbox_depth() == 0
    store.close()

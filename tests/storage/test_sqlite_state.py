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

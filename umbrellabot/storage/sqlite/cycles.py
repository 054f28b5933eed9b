"""One row per ingest cycle in SQLite, for `status`, readiness and metrics; and the leases of
the work one process does for all (`duties`)."""

from __future__ import annotations

import time
from typing import Any

from umbrellabot.storage.sqlite.database import Database

_COUNTS = ("files", "records", "alerts", "failures", "backlog", "error")


class SqliteCycleLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start_cycle(self) -> int:
        with self._db.transaction() as db:
            cursor = db.execute("INSERT INTO cycles (started_at) VALUES (?)", (time.time(),))
            return int(cursor.lastrowid or 0)

    def finish_cycle(self, cycle_id: int, **counts: Any) -> None:
        values = [counts.get(name, 0 if name != "error" else None) for name in _COUNTS]
        with self._db.transaction() as db:
            db.execute(
                "UPDATE cycles SET finished_at = ?, files = ?, records = ?, alerts = ?,"
                " failures = ?, backlog = ?, error = ? WHERE id = ?",
                (time.time(), *values, cycle_id),
            )

    def prune_cycles(self, older_than: float) -> int:
        with self._db.transaction() as db:
            return db.execute("DELETE FROM cycles WHERE started_at < ?", (older_than,)).rowcount

    def last_success_at(self) -> float | None:
        row = self._db.execute(
            "SELECT max(finished_at) FROM cycles WHERE finished_at IS NOT NULL AND error IS NULL"
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def last_cycle(self) -> dict[str, Any] | None:
        cursor = self._db.execute("SELECT * FROM cycles ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([column[0] for column in cursor.description], row, strict=True))

    def hold_duty(self, name: str, owner: str, lease_s: float, now: float) -> bool:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO duties (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET owner = excluded.owner, until = excluded.until"
                " WHERE duties.owner = excluded.owner OR duties.until <= ?",
                (name, owner, now + lease_s, now),
            )
            row = db.execute("SELECT owner FROM duties WHERE name = ?", (name,)).fetchone()
        return row is not None and row[0] == owner

    def release_duty(self, name: str, owner: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM duties WHERE name = ? AND owner = ?", (name, owner))

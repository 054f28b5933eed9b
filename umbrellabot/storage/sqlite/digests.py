"""`ports.DigestLog` in SQLite: the day's matches below ALERT_MIN_SEVERITY, counted per rule,
account and principal as files commit, and the days whose digest was posted."""

from __future__ import annotations

from collections.abc import Mapping

from umbrellabot.model.triage import QuietKey
from umbrellabot.storage.sqlite.database import Database


def count_quiet(db: Database, quiet: Mapping[QuietKey, int]) -> None:
    """Inside the file's commit: counted once per file, like its alerts."""
    db.executemany(
        "INSERT INTO quiet_counts (day, rule_id, severity, account, principal, count)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, rule_id, account, principal)"
        " DO UPDATE SET count = count + excluded.count",
        ((k.day, k.rule_id, k.severity, k.account, k.principal, n) for k, n in quiet.items()),
    )


class SqliteDigests:
    def __init__(self, db: Database) -> None:
        self._db = db

    def quiet_counts(self, day: str, min_severity: int) -> list[tuple[QuietKey, int]]:
        rows = self._db.execute(
            "SELECT day, rule_id, severity, account, principal, count FROM quiet_counts"
            " WHERE day = ? AND severity >= ? ORDER BY count DESC",
            (day, min_severity),
        ).fetchall()
        return [(QuietKey(r[0], r[1], r[2], r[3], r[4]), int(r[5])) for r in rows]

    def digest_posted(self, day: str) -> bool:
        found = self._db.execute("SELECT 1 FROM digests WHERE day = ?", (day,)).fetchone()
        return found is not None

    def record_digest(self, day: str, at: float) -> bool:
        with self._db.transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO digests (day, posted_at) VALUES (?, ?)", (day, at)
            ).rowcount
        return inserted == 1

    def prune_quiet(self, before_day: str) -> int:
        with self._db.transaction() as db:
            db.execute("DELETE FROM digests WHERE day < ?", (before_day,))
            return db.execute("DELETE FROM quiet_counts WHERE day < ?", (before_day,)).rowcount

"""`ports.LookupGuard` in SQLite: the bot's engine lookups per user in the last minute, the
eventIDs it looked for in vain recently, and the messages a process claimed to answer."""

from __future__ import annotations

from umbrellabot.storage.sqlite.database import Database

WINDOW_S = 60.0
MENTION_KEEP_S = 86400.0  # Slack retries within minutes; a day is plenty


class SqliteLookups:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take_lookup(self, user: str, now: float, per_minute: int) -> bool:
        with self._db.transaction() as db:
            db.execute("DELETE FROM lookups WHERE at <= ?", (now - WINDOW_S,))
            made = db.execute("SELECT count(*) FROM lookups WHERE user = ?", (user,)).fetchone()
            if per_minute > 0 and int(made[0]) >= per_minute:
                return False
            db.execute("INSERT INTO lookups (user, at) VALUES (?, ?)", (user, now))
        return True

    def remember_miss(self, event_id: str, until: float) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM lookup_misses WHERE until <= ?", (until - 86400,))
            db.execute(
                "INSERT INTO lookup_misses (event_id, until) VALUES (?, ?) ON CONFLICT"
                " (event_id) DO UPDATE SET until = excluded.until",
                (event_id, until),
            )

    def known_miss(self, event_id: str, now: float) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM lookup_misses WHERE event_id = ? AND until > ?", (event_id, now)
        ).fetchone()
        return row is not None

    def claim_mention(self, channel: str, ts: str, now: float) -> bool:
        with self._db.transaction() as db:
            db.execute("DELETE FROM mentions WHERE at <= ?", (now - MENTION_KEEP_S,))
            claimed = db.execute(
                "INSERT INTO mentions (channel, ts, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (channel, ts, now),
            )
        return claimed.rowcount == 1

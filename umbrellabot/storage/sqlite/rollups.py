"""Slack roll-up windows in SQLite, so that a restart continues the same roll-up."""

from __future__ import annotations

import time
from collections.abc import Sequence

from umbrellabot.storage.ports import RollupWindow
from umbrellabot.storage.sqlite.database import Database

ROLLUP_COLUMNS = (
    "channel, rule_id, principal, window_start, alerts, parent_channel, parent_ts,"
    " first_event_time, last_event_time, acked_by, acked_at, acked"
)


def rollup_by_parent(db: Database, channel: str, ts: str) -> RollupWindow | None:
    row = db.execute(
        f"SELECT {ROLLUP_COLUMNS} FROM slack_rollups WHERE parent_channel = ? AND parent_ts = ?"
        " ORDER BY window_start DESC LIMIT 1",
        (channel, ts),
    ).fetchone()
    return RollupWindow(*row) if row else None


class SqliteRollups:
    def __init__(self, db: Database) -> None:
        self._db = db

    def rollup_window(
        self, channel: str, rule_id: str, principal: str, since: float
    ) -> RollupWindow | None:
        """The roll-up window of (channel, rule, principal) that started after `since` and has
        a parent, else the newest (two processes may each have started one)."""
        row = self._db.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM slack_rollups WHERE channel = ?"
            " AND rule_id = ? AND principal = ? AND window_start > ?"
            " ORDER BY parent_ts IS NOT NULL DESC, window_start DESC LIMIT 1",
            (channel, rule_id, principal, since),
        ).fetchone()
        return RollupWindow(*row) if row else None

    def rollup_by_parent(self, channel: str, ts: str) -> RollupWindow | None:
        return rollup_by_parent(self._db, channel, ts)

    def save_rollup(self, window: RollupWindow, delivered: Sequence[int] = ()) -> None:
        """Store the window and mark `delivered` outbox ids delivered, in one transaction;
        with a parent, the delivered alerts that have no message of their own are told in its
        thread (what acknowledging the parent acknowledges)."""
        now = time.time()
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO slack_rollups (channel, rule_id, principal, window_start, alerts,"
                " parent_channel, parent_ts, first_event_time, last_event_time, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT"
                " (channel, rule_id, principal, window_start) DO UPDATE SET"
                f" alerts=slack_rollups.alerts + {len(delivered)},"
                " parent_channel=coalesce(slack_rollups.parent_channel, excluded.parent_channel),"
                " parent_ts=coalesce(slack_rollups.parent_ts, excluded.parent_ts),"
                " first_event_time=excluded.first_event_time,"
                " last_event_time=excluded.last_event_time, updated_at=excluded.updated_at",
                (
                    window.channel,
                    window.rule_id,
                    window.principal,
                    window.window_start,
                    window.alerts,
                    window.parent_channel,
                    window.parent_ts,
                    window.first_event_time,
                    window.last_event_time,
                    now,
                ),
            )
            db.executemany(
                "UPDATE outbox SET delivered_at = ?, claimed_by = NULL, claimed_until = NULL,"
                " message_channel = coalesce(message_channel, ?),"
                " message_ts = coalesce(message_ts, ?) WHERE id = ?",
                ((now, window.parent_channel, window.parent_ts, i) for i in delivered),
            )

    def claim_parent(self, window: RollupWindow, owner: str, now: float, ttl_s: float) -> bool:
        """A claim row per (channel, rule, principal): taken when none of the last `ttl_s`
        holds, or by its owner again; refused once a window since this one has a parent."""
        with self._db.transaction() as db:
            parented = db.execute(
                "SELECT 1 FROM slack_rollups WHERE channel = ? AND rule_id = ? AND principal = ?"
                " AND window_start >= ? AND parent_ts IS NOT NULL",
                (window.channel, window.rule_id, window.principal, window.window_start),
            ).fetchone()
            if parented:
                return False
            claimed = db.execute(
                "INSERT INTO parent_claims (channel, rule_id, principal, owner, until)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, rule_id, principal) DO UPDATE"
                " SET owner = excluded.owner, until = excluded.until"
                " WHERE parent_claims.owner = excluded.owner OR parent_claims.until < ?",
                (window.channel, window.rule_id, window.principal, owner, now + ttl_s, now),
            ).rowcount
        return claimed == 1

    def prune_rollups(self, older_than: float) -> int:
        """Forget roll-up windows that started before `older_than` (epoch s)."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM parent_claims WHERE until < ?", (older_than,))
            return db.execute(
                "DELETE FROM slack_rollups WHERE window_start < ?", (older_than,)
            ).rowcount

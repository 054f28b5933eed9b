"""The alert outbox in SQLite: alerts waiting for delivery, unique per dedup key (eventID and
rule, or detection, group and window), so nothing is told twice."""

from __future__ import annotations

import time
from collections.abc import Sequence

from umbrellabot.model.alerts import Alert, alert_from_json, alert_to_json, dedup_key
from umbrellabot.storage.ports import PendingAlert
from umbrellabot.storage.sqlite.database import Database


def insert_alerts(db: Database, alerts: Sequence[Alert], now: float) -> int:
    """Into the outbox, each dedup key once; returns how many were new."""
    rows = [
        (
            dedup_key(alert),
            alert.rule_id,
            alert.event_id,
            int(alert.severity),
            alert_to_json(alert),
            now,
        )
        for alert in alerts
    ]
    inserted = db.executemany(
        "INSERT OR IGNORE INTO outbox (dedup_key, rule_id, event_id, severity, payload,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return max(inserted.rowcount, 0)


class SqliteOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_alerts(self, alerts: Sequence[Alert]) -> int:
        """Alerts that come from no single file (the SQL detections); returns how many are new."""
        with self._db.transaction() as db:
            return insert_alerts(db, alerts, time.time())

    def pending_alerts(self, limit: int = 1000, now: float | None = None) -> list[PendingAlert]:
        rows = self._db.execute(
            "SELECT id, payload, attempts FROM outbox WHERE delivered_at IS NULL"
            " AND next_attempt_at <= ? ORDER BY severity DESC, id LIMIT ?",
            (time.time() if now is None else now, limit),
        )
        return [PendingAlert(row[0], alert_from_json(row[1]), row[2]) for row in rows]

    def claim_pending(
        self, owner: str, limit: int = 1000, now: float | None = None, ttl_s: float = 600.0
    ) -> list[PendingAlert]:
        """Like `pending_alerts`, but each row is claimed by `owner` for `ttl_s` seconds: a
        second process on the same state never takes it for delivery meanwhile."""
        moment = time.time() if now is None else now
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT id, payload, attempts, claimed_by FROM outbox WHERE delivered_at IS NULL"
                " AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?"
                " OR claimed_by = ?) ORDER BY severity DESC, id LIMIT ?",
                (moment, time.time(), owner, limit),
            ).fetchall()
            db.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                ((owner, time.time() + ttl_s, row[0]) for row in rows),
            )
        # A claim taken over (its holder died, or its time ran out) may have been told: it
        # counts as an attempt, so the notifier looks for the message before posting it.
        return [
            PendingAlert(
                row[0],
                alert_from_json(row[1]),
                max(row[2], 1) if row[3] not in (None, owner) else row[2],
            )
            for row in rows
        ]

    def record_message(self, alert_id: int, channel: str, ts: str) -> None:
        self._db.execute(
            "UPDATE outbox SET message_channel = ?, message_ts = ? WHERE id = ?",
            (channel, ts, alert_id),
        )

    def message_of(self, dedup_key: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT message_channel, message_ts FROM outbox WHERE dedup_key = ?"
            " AND message_ts IS NOT NULL",
            (dedup_key,),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def mark_delivered(self, alert_ids: Sequence[int]) -> None:
        now = time.time()
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE outbox SET delivered_at = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE id = ?",
                ((now, i) for i in alert_ids),
            )

    def prune_outbox(self, older_than: float) -> int:
        """Forget alerts created before `older_than`, delivered or not (an alert that could
        not be delivered in that long is past telling)."""
        with self._db.transaction() as db:
            return db.execute("DELETE FROM outbox WHERE created_at < ?", (older_than,)).rowcount

    def claim_owners(self) -> set[str]:
        rows = self._db.execute(
            "SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL"
            " AND delivered_at IS NULL"
        )
        return {row[0] for row in rows}

    def release_claims(self, owner: str, *, maybe_told: bool = False) -> None:
        """Give back what `owner` claimed and did not deliver (the next round takes it);
        `maybe_told` (its owner died while delivering): the claim only expires, so whoever
        takes it next looks in Slack before posting."""
        with self._db.transaction() as db:
            change = (
                "claimed_until = 0" if maybe_told else "claimed_by = NULL, claimed_until = NULL"
            )
            db.execute(
                f"UPDATE outbox SET {change} WHERE claimed_by = ? AND delivered_at IS NULL",
                (owner,),
            )

    def mark_delivery_failed(self, alert_id: int, error: str, retry_at: float) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                (error, retry_at, alert_id),
            )

    def delivery_attempt(self, alert_id: int) -> tuple[int, float] | None:
        """(attempts, next_attempt_at) of one outbox entry."""
        row = self._db.execute(
            "SELECT attempts, next_attempt_at FROM outbox WHERE id = ?", (alert_id,)
        ).fetchone()
        return (int(row[0]), float(row[1])) if row else None

    def recent_alerts(self, limit: int) -> list[Alert]:
        """The newest alerts of the outbox, delivered or not (what `recent` shows)."""
        rows = self._db.execute("SELECT payload FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [alert_from_json(row[0]) for row in rows]

    def outbox_depth(self) -> int:
        row = self._db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
        return int(row.fetchone()[0])

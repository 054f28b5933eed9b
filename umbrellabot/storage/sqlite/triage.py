"""`ports.Triage` in SQLite: acknowledgements (one per alert, the first stays) and mutes of a
(rule, principal, account) until a time; muted alerts stay in the outbox, marked."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from umbrellabot.model.alerts import Alert, alert_from_json
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import Ack, Mute, MuteKey
from umbrellabot.storage.ports import PendingAlert, RollupWindow
from umbrellabot.storage.sqlite.database import Database
from umbrellabot.storage.sqlite.rollups import rollup_by_parent

_MUTE_COLUMNS = "id, rule_id, principal, account, until, muted_by, muted_at, alert_id"


def _mute(row: Any) -> Mute:
    return Mute(row[0], MuteKey(row[1], row[2], row[3]), row[4], row[5], row[6], row[7])


class SqliteTriage:
    def __init__(self, db: Database) -> None:
        self._db = db

    def acknowledge(self, alert_id: int, user: str, at: float) -> Ack:
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO acks (alert_id, user, at) VALUES (?, ?, ?)",
                (alert_id, user, at),
            )
            row = db.execute(
                "SELECT alert_id, user, at FROM acks WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        return Ack(row[0], row[1], row[2])

    def acknowledge_thread(
        self, channel: str, ts: str, user: str, at: float
    ) -> RollupWindow | None:
        """Every alert told in the roll-up's thread acknowledged (the first ack of each stays)
        and the roll-up's acknowledgement updated, in one transaction."""
        with self._db.transaction() as db:
            if rollup_by_parent(self._db, channel, ts) is None:
                return None
            told = (
                "FROM outbox WHERE message_channel = ? AND message_ts = ?"
                " AND delivered_at IS NOT NULL AND muted_by IS NULL"
            )
            db.execute(
                f"INSERT OR IGNORE INTO acks (alert_id, user, at) SELECT id, ?, ? {told}",
                (user, at, channel, ts),
            )
            acked = db.execute(
                f"SELECT count(*) FROM acks WHERE alert_id IN (SELECT id {told})", (channel, ts)
            ).fetchone()[0]
            db.execute(
                "UPDATE slack_rollups SET acked_by = ?, acked_at = ?, acked = ?"
                " WHERE parent_channel = ? AND parent_ts = ?",
                (user, at, int(acked), channel, ts),
            )
            return rollup_by_parent(self._db, channel, ts)

    def ack_of(self, alert_id: int) -> Ack | None:
        row = self._db.execute(
            "SELECT alert_id, user, at FROM acks WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return Ack(row[0], row[1], row[2]) if row else None

    def acks(self, limit: int) -> list[tuple[Ack, Alert]]:
        rows = self._db.execute(
            "SELECT a.alert_id, a.user, a.at, o.payload FROM acks a JOIN outbox o"
            " ON o.id = a.alert_id ORDER BY a.at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(Ack(row[0], row[1], row[2]), alert_from_json(row[3])) for row in rows]

    def add_mute(
        self, key: MuteKey, until: float, by: str, at: float, alert_id: int | None
    ) -> Mute:
        with self._db.transaction() as db:
            row = db.execute(
                f"SELECT {_MUTE_COLUMNS} FROM mutes WHERE rule_id = ? AND principal = ?"
                " AND account = ? AND until > ? ORDER BY until DESC LIMIT 1",
                (key.rule_id, key.principal, key.account, at),
            ).fetchone()
            if row is not None:  # the same thing muted again: one mute, the later end
                db.execute(
                    "UPDATE mutes SET until = max(until, ?), muted_by = ?, muted_at = ?"
                    " WHERE id = ?",
                    (until, by, at, row[0]),
                )
                mute_id = int(row[0])
            else:
                mute_id = int(
                    db.execute(
                        "INSERT INTO mutes (rule_id, principal, account, until, muted_by,"
                        " muted_at, alert_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key.rule_id, key.principal, key.account, until, by, at, alert_id),
                    ).lastrowid
                    or 0
                )
            found = db.execute(
                f"SELECT {_MUTE_COLUMNS} FROM mutes WHERE id = ?", (mute_id,)
            ).fetchone()
        return _mute(found)

    def active_mutes(self, now: float) -> list[Mute]:
        rows = self._db.execute(
            f"SELECT {_MUTE_COLUMNS} FROM mutes WHERE until > ? ORDER BY until", (now,)
        ).fetchall()
        return [_mute(row) for row in rows]

    def mute_by_id(self, mute_id: int) -> Mute | None:
        row = self._db.execute(
            f"SELECT {_MUTE_COLUMNS} FROM mutes WHERE id = ?", (mute_id,)
        ).fetchone()
        return _mute(row) if row else None

    def end_mute(self, mute_id: int, now: float) -> Mute | None:
        with self._db.transaction() as db:
            changed = db.execute(
                "UPDATE mutes SET until = ? WHERE id = ? AND until > ?", (now, mute_id, now)
            ).rowcount
        return self.mute_by_id(mute_id) if changed else None

    def alert_by_id(self, alert_id: int) -> PendingAlert | None:
        row = self._db.execute(
            "SELECT id, payload, attempts FROM outbox WHERE id = ?", (alert_id,)
        ).fetchone()
        return PendingAlert(row[0], alert_from_json(row[1]), row[2]) if row else None

    def mark_muted(self, alert_ids: Sequence[int], mute_id: int) -> None:
        now = time.time()
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE outbox SET delivered_at = ?, muted_by = ?, claimed_by = NULL,"
                " claimed_until = NULL WHERE id = ?",
                ((now, mute_id, i) for i in alert_ids),
            )

    def open_alerts(
        self, since: float, limit: int
    ) -> tuple[dict[Severity, int], list[PendingAlert]]:
        where = (
            " FROM outbox o LEFT JOIN acks a ON a.alert_id = o.id WHERE a.alert_id IS NULL"
            " AND o.muted_by IS NULL AND o.delivered_at IS NOT NULL AND o.created_at >= ?"
        )
        counts = self._db.execute(
            f"SELECT o.severity, count(*){where} GROUP BY o.severity", (since,)
        ).fetchall()
        rows = self._db.execute(
            f"SELECT o.id, o.payload, o.attempts{where} ORDER BY o.severity DESC, o.id DESC"
            " LIMIT ?",
            (since, limit),
        ).fetchall()
        by_severity = {Severity(int(row[0])): int(row[1]) for row in counts}
        return by_severity, [PendingAlert(r[0], alert_from_json(r[1]), r[2]) for r in rows]

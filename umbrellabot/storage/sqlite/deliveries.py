"""`ports.DeliveryWatch` in SQLite: the newest log file of each account, for LOG_SILENCE_HOURS."""

from __future__ import annotations

from collections.abc import Iterable

from umbrellabot.storage.ports import Delivery
from umbrellabot.storage.sqlite.database import Database


class SqliteDeliveries:
    def __init__(self, db: Database) -> None:
        self._db = db

    def deliveries(self) -> dict[str, Delivery]:
        rows = self._db.execute(
            "SELECT account, last_key, last_modified, silent_alert FROM deliveries"
        ).fetchall()
        return {row[0]: Delivery(row[0], row[1], row[2], row[3]) for row in rows}

    def save_deliveries(self, deliveries: Iterable[Delivery]) -> None:
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO deliveries (account, last_key, last_modified, silent_alert)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET"
                " last_key = excluded.last_key, last_modified = excluded.last_modified,"
                " silent_alert = excluded.silent_alert",
                ((d.account, d.last_key, d.last_modified, d.silent_alert) for d in deliveries),
            )

"""The durable state in one SQLite database: a repository per table family, one connection."""

from __future__ import annotations

from pathlib import Path

from umbrellabot.storage.sqlite.cycles import SqliteCycleLog
from umbrellabot.storage.sqlite.database import DATABASE_NAME, Database
from umbrellabot.storage.sqlite.deliveries import SqliteDeliveries
from umbrellabot.storage.sqlite.digests import SqliteDigests
from umbrellabot.storage.sqlite.events import SqliteEventIndex
from umbrellabot.storage.sqlite.files import SqliteFileLedger
from umbrellabot.storage.sqlite.lookups import SqliteLookups
from umbrellabot.storage.sqlite.outbox import SqliteOutbox
from umbrellabot.storage.sqlite.rollups import SqliteRollups
from umbrellabot.storage.sqlite.triage import SqliteTriage

__all__ = ["DATABASE_NAME", "SqliteState"]


class SqliteState:
    """The nine repositories of `storage.ports` over one database in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.database = Database(state_dir)
        self.path = self.database.path
        self.files = SqliteFileLedger(self.database)
        self.events = SqliteEventIndex(self.database)
        self.outbox = SqliteOutbox(self.database)
        self.rollups = SqliteRollups(self.database)
        self.cycles = SqliteCycleLog(self.database)
        self.deliveries = SqliteDeliveries(self.database)
        self.triage = SqliteTriage(self.database)
        self.lookups = SqliteLookups(self.database)
        self.digests = SqliteDigests(self.database)

    def close(self) -> None:
        self.database.close()

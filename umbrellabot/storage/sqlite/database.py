"""The one SQLite database in STATE_DIR (WAL), and one statement or transaction at a time.

SQLite, because it is embedded, transactional and durable against a killed process with WAL and
synchronous=NORMAL, and needs nothing to run. The ingest cycle commits from its own thread while
the bot and the notifier read and write: a lock keeps every statement and transaction whole.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 9
DATABASE_NAME = "umbrellabot.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY,
    etag TEXT,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'abandoned')),
    records INTEGER NOT NULL DEFAULT 0,
    alerts INTEGER NOT NULL DEFAULT 0,
    output_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    next_retry_at REAL,
    updated_at REAL NOT NULL,
    deaths INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_by_time ON files (updated_at);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    file_id INTEGER NOT NULL,  -- files.rowid
    event_time TEXT,
    priority TEXT
);
CREATE INDEX IF NOT EXISTS events_by_file ON events (file_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    rule_id TEXT NOT NULL,
    event_id TEXT,
    severity INTEGER NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (delivered_at, next_attempt_at);
CREATE TABLE IF NOT EXISTS listings (
    prefix TEXT PRIMARY KEY,  -- a region folder
    through TEXT NOT NULL     -- YYYY-MM-DD: listed and processed through this day
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    files INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    alerts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    backlog INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS slack_rollups (
    channel TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    window_start REAL NOT NULL,
    alerts INTEGER NOT NULL DEFAULT 0,
    parent_channel TEXT,
    parent_ts TEXT,
    first_event_time TEXT,
    last_event_time TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (channel, rule_id, principal, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acks (
    alert_id INTEGER PRIMARY KEY,  -- outbox.id
    user TEXT NOT NULL,            -- Slack user ID
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mutes (
    id INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL,
    principal TEXT NOT NULL,       -- '' for alerts without one
    account TEXT NOT NULL,         -- '' for alerts without one
    until REAL NOT NULL,
    muted_by TEXT NOT NULL,
    muted_at REAL NOT NULL,
    alert_id INTEGER
);
CREATE INDEX IF NOT EXISTS mutes_by_key ON mutes (rule_id, principal, account, until);
CREATE TABLE IF NOT EXISTS lookups (
    user TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lookups_by_user ON lookups (user, at);
CREATE TABLE IF NOT EXISTS lookup_misses (
    event_id TEXT PRIMARY KEY,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS duties (  -- work one process does for all, and who holds it (8)
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mentions (  -- the Slack messages a process claimed to answer (8)
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (channel, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parent_claims (  -- who posts a roll-up's parent message (9)
    channel TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (channel, rule_id, principal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quiet_counts (
    day TEXT NOT NULL,             -- YYYY-MM-DD of the events (UTC)
    rule_id TEXT NOT NULL,
    severity INTEGER NOT NULL,
    account TEXT NOT NULL,
    principal TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, rule_id, account, principal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digests (
    day TEXT PRIMARY KEY,          -- the day a digest was posted for
    posted_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    account TEXT PRIMARY KEY,
    last_key TEXT NOT NULL,       -- the newest log file seen of the account
    last_modified REAL NOT NULL,  -- its LastModified
    silent_alert TEXT             -- the dedup key of the open silence alert
) WITHOUT ROWID;
"""

# (table, column, type) added since version 2: worker deaths apart (3), claims of outbox rows by
# one process (4), the Slack message that told an alert (5), the mute that silenced it (6), the
# acknowledgement of a roll-up's thread (7)
_ADDED_COLUMNS = (
    ("files", "deaths", "INTEGER NOT NULL DEFAULT 0"),
    ("outbox", "claimed_by", "TEXT"),
    ("outbox", "claimed_until", "REAL"),
    ("outbox", "message_channel", "TEXT"),
    ("outbox", "message_ts", "TEXT"),
    ("outbox", "muted_by", "INTEGER"),
    ("slack_rollups", "acked_by", "TEXT"),
    ("slack_rollups", "acked_at", "REAL"),
    ("slack_rollups", "acked", "INTEGER NOT NULL DEFAULT 0"),
)
# indexes on added columns: made after the columns are
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_by_message ON outbox (message_channel, message_ts)",
)


class Database:
    """The connection, serialized across threads; `transaction()` for several statements."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DATABASE_NAME
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")
        self.execute("PRAGMA busy_timeout=10000")
        version = int(self.execute("PRAGMA user_version").fetchone()[0])
        if version == 1:  # the index had another shape; lookups fall back to the engine
            self.executescript("DROP INDEX IF EXISTS events_by_time; DROP TABLE events;")
        self.executescript(_SCHEMA)
        for table, column, kind in _ADDED_COLUMNS:  # what older versions lack
            if column not in {row[1] for row in self.execute(f"PRAGMA table_info({table})")}:
                self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for index in _ADDED_INDEXES:
            self.execute(index)
        self.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        with self._lock:
            return self._connection.executemany(sql, rows)

    def executescript(self, script: str) -> sqlite3.Cursor:
        with self._lock:
            return self._connection.executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self._lock:  # no other thread's statement may land inside this transaction
            self.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

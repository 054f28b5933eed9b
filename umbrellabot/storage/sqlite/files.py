"""The file ledger in SQLite: every log file seen (done, failed with its retry time, or
abandoned), and the commit that makes a file done together with its events and alerts."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from umbrellabot.model import own_alerts
from umbrellabot.model.alerts import Alert
from umbrellabot.model.triage import QuietKey
from umbrellabot.storage.file_failures import Attempt, after_failure
from umbrellabot.storage.ports import FileState, IndexedEventRow
from umbrellabot.storage.sqlite.database import Database
from umbrellabot.storage.sqlite.digests import count_quiet
from umbrellabot.storage.sqlite.outbox import insert_alerts

_COLUMNS = "key, etag, status, attempts, reason, next_retry_at, deaths"


class SqliteFileLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def file_states(self, prefixes: Sequence[str]) -> dict[str, FileState]:
        """What is known of every file under the given prefixes (one range query each)."""
        known: dict[str, FileState] = {}
        for prefix in prefixes:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE key >= ? AND key < ?",
                (prefix, prefix + "\uffff"),
            )
            known.update((row[0], FileState(*row)) for row in rows)
        return known

    def record_done(
        self,
        key: str,
        etag: str | None,
        output: str,
        records: int,
        events: Iterable[IndexedEventRow],
        alerts: Sequence[Alert],
        quiet: Mapping[QuietKey, int] | None = None,
    ) -> int:
        """Commit one processed file with its event index and alerts; returns new alerts.

        Called after the enriched copy was uploaded: a crash before the commit means the file
        is processed again (same output key, same content) and its alerts inserted then, once."""
        now = time.time()
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO files (key, etag, status, records, alerts, output_key, attempts,"
                " reason, next_retry_at, updated_at) VALUES (?, ?, 'done', ?, ?, ?, 0, NULL,"
                " NULL, ?) ON CONFLICT (key) DO UPDATE SET etag=excluded.etag, status='done',"
                " records=excluded.records, alerts=excluded.alerts, output_key=excluded.output_key,"
                " reason=NULL, next_retry_at=NULL, deaths=0, updated_at=excluded.updated_at",
                (key, etag, records, len(alerts), output, now),
            )
            file_id = db.execute("SELECT rowid FROM files WHERE key = ?", (key,)).fetchone()[0]
            db.executemany(
                "INSERT OR REPLACE INTO events (event_id, file_id, event_time, priority)"
                " VALUES (?, ?, ?, ?)",
                ((event_id, file_id, when, priority) for event_id, when, priority in events),
            )
            count_quiet(db, quiet or {})
            return insert_alerts(db, alerts, now)

    def record_failure(
        self,
        key: str,
        etag: str | None,
        reason: str,
        *,
        counts: bool,
        max_attempts: int,
        retry_base_s: float,
        worker_died: bool = False,
        max_deaths: int = 3,
    ) -> FileState:
        """A failed attempt (`file_failures.after_failure` says what it makes of the file)."""
        now = time.time()
        row = self._db.execute(
            "SELECT attempts, deaths FROM files WHERE key = ?", (key,)
        ).fetchone()
        attempt = Attempt(
            key, etag, reason, counts, max_attempts, retry_base_s, worker_died, max_deaths
        )
        state = after_failure(attempt, row[0] if row else 0, row[1] if row else 0, now)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO files (key, etag, status, attempts, deaths, reason, next_retry_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " etag=excluded.etag, status=excluded.status, attempts=excluded.attempts,"
                " deaths=excluded.deaths, reason=excluded.reason,"
                " next_retry_at=excluded.next_retry_at, updated_at=excluded.updated_at",
                (
                    key,
                    etag,
                    state.status,
                    state.attempts,
                    state.deaths,
                    state.reason,
                    state.next_retry_at,
                    now,
                ),
            )
            if state.status == "abandoned":  # told like any alert, in the same transaction
                insert_alerts(db, [own_alerts.file_abandoned(key, state.reason or "", now)], now)
        return state

    def listed_through(self, prefixes: Sequence[str]) -> dict[str, date]:
        """The day each region folder was last listed and processed through."""
        found = {}
        for prefix in prefixes:
            row = self._db.execute(
                "SELECT through FROM listings WHERE prefix = ?", (prefix,)
            ).fetchone()
            if row:
                found[prefix] = date.fromisoformat(row[0])
        return found

    def mark_listed(self, prefixes: Sequence[str], through: date) -> None:
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO listings (prefix, through) VALUES (?, ?) ON CONFLICT (prefix)"
                " DO UPDATE SET through = max(listings.through, excluded.through)",
                ((prefix, through.isoformat()) for prefix in prefixes),
            )

    def waiting_folders(self) -> list[str]:
        """The day folders of files that failed and wait for a retry (listed whatever their
        age, so that a retry is never left behind by the listing window)."""
        rows = self._db.execute("SELECT key FROM files WHERE status = 'failed'")
        return sorted({row[0].rsplit("/", 1)[0] + "/" for row in rows if "/" in row[0]})

    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        """Take (or renew) the lease on `key` for `ttl_s` seconds; False while another owner
        holds an unexpired one."""
        now = time.time()
        with self._db.transaction() as db:
            changed = db.execute(
                "INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE leases.owner = excluded.owner OR leases.expires_at < ?",
                (key, owner, now + ttl_s, now),
            ).rowcount
        return changed == 1

    def release(self, key: str, owner: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def prune_files(self, older_than: float) -> int:
        """Forget files done or given up on before `older_than` (their index entries first),
        and expired leases. A file still listed after that (a backfill of old days) is simply
        processed again."""
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM events WHERE file_id IN (SELECT rowid FROM files WHERE"
                " updated_at < ? AND status != 'failed')",
                (older_than,),
            )
            pruned = db.execute(
                "DELETE FROM files WHERE updated_at < ? AND status != 'failed'", (older_than,)
            ).rowcount
            db.execute("DELETE FROM leases WHERE expires_at < ?", (time.time(),))
        return pruned

    def lease_owners(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT owner FROM leases")}

    def release_all(self, owner: str) -> int:
        """Every lease of `owner` (a process known to be gone); returns how many."""
        with self._db.transaction() as db:
            return db.execute("DELETE FROM leases WHERE owner = ?", (owner,)).rowcount

    def abandoned_files(self, since: float = 0.0) -> list[FileState]:
        """The files given up on (since `since`, epoch s), by key."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM files WHERE status = 'abandoned' AND updated_at >= ?"
            " ORDER BY key",
            (since,),
        )
        return [FileState(*row) for row in rows]

    def retry(self, keys: Sequence[str] | None = None) -> list[str]:
        """Give abandoned files (`keys`, or all of them) their attempts back: the next cycle
        that lists them processes them again. Returns the keys put back."""
        with self._db.transaction() as db:
            if keys is None:
                chosen = [
                    r[0] for r in db.execute("SELECT key FROM files WHERE status = 'abandoned'")
                ]
            else:
                chosen = [
                    key
                    for key in keys
                    if db.execute(
                        "SELECT 1 FROM files WHERE key = ? AND status = 'abandoned'", (key,)
                    ).fetchone()
                ]
            db.executemany(
                "UPDATE files SET status = 'failed', attempts = 0, deaths = 0,"
                " next_retry_at = 0, updated_at = ? WHERE key = ?",
                ((time.time(), key) for key in chosen),
            )
        return chosen

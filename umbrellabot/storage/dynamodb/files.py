"""The file ledger in DynamoDB: one item per log file in its day folder's partition
(`file#<folder>`, sorted by name), failed and abandoned files listed in `by_state`.

The commit of a processed file is several writes, each safe to repeat, and the file's item
last: its events and its quiet counts (puts of the same content), its alerts (each dedup key
once), then the file done. A process killed between them leaves the file not done; whoever
processes it again repeats them and adds nothing twice. No transaction: DynamoDB's hold 100
items, and a file's events and alerts may be thousands.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from umbrellabot.model import own_alerts
from umbrellabot.model.alerts import Alert
from umbrellabot.model.triage import QuietKey
from umbrellabot.storage.dynamodb.leases import Leases
from umbrellabot.storage.dynamodb.outbox import alert_action, insert_alerts
from umbrellabot.storage.dynamodb.table import ConditionFailed, Item, Table, part
from umbrellabot.storage.file_failures import Attempt, after_failure
from umbrellabot.storage.ports import FileState, IndexedEventRow

FAILED = "files#failed"
ABANDONED = "files#abandoned"
_QUIET_PER_ITEM = 500  # counts of one file and day in one item (far under 400 KB)


def file_key(key: str) -> tuple[str, str]:
    """(pk, sk) of a file, or of a prefix inside one folder: the folder, the name."""
    folder, slash, name = key.rpartition("/")
    return f"file#{folder}{slash}", name


def event_key(event_id: str) -> tuple[str, str]:
    return f"event#{part(event_id)}", "event"


def _state(item: Item) -> FileState:
    retry = item.get("next_retry_at")
    return FileState(
        str(item["file_key"]),
        item.get("etag"),
        str(item["file_status"]),
        int(item.get("attempts", 0)),
        item.get("reason"),
        float(retry) if retry is not None else None,
        int(item.get("deaths", 0)),
    )


class DynamoFileLedger(Leases):
    def __init__(self, table: Table, *, index_all_events: bool) -> None:
        super().__init__(table)
        self._table = table
        self._index_all = index_all_events

    def file_states(self, prefixes: Sequence[str]) -> dict[str, FileState]:
        """What is known of the files under each prefix: a day folder, or a key."""
        known: dict[str, FileState] = {}
        for prefix in prefixes:
            pk, rest = file_key(prefix)
            condition = "begins_with(#sk, :sk)" if rest else ""
            items = self._table.query(pk, sk_condition=condition, sk=rest or None)
            known.update((str(i["file_key"]), _state(i)) for i in items)
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
        now = time.time()
        expires = self._table.kept_until(now)
        alerted = {alert.event_id for alert in alerts if alert.event_id}
        self._table.put_many(
            [
                {
                    "pk": event_key(event_id)[0],
                    "sk": "event",
                    "output_key": output,
                    "event_time": when,
                    "priority": priority,
                    "expires": expires,
                }
                for event_id, when, priority in events
                if self._index_all or event_id in alerted
            ]
        )
        new = insert_alerts(self._table, alerts, now)
        self._count_quiet(key, etag, quiet or {})
        pk, sk = file_key(key)
        self._table.put(
            {
                "pk": pk,
                "sk": sk,
                "file_key": key,
                "etag": etag,
                "file_status": "done",
                "records": records,
                "alert_count": len(alerts),
                "output_key": output,
                "attempts": 0,
                "deaths": 0,
                "updated_at": now,
                "expires": expires,
            }
        )
        return new

    def _count_quiet(self, key: str, etag: str | None, quiet: Mapping[QuietKey, int]) -> None:
        """A file's quiet counts, one item per day it has any (`quiet#<day>`, the file's key):
        put again, it says the same, so a file committed twice counts once. The digest adds
        them up."""
        by_day: dict[str, dict[str, list[object]]] = {}
        for quiet_key, count in quiet.items():
            entry = [quiet_key.rule_id, quiet_key.severity, quiet_key.account, quiet_key.principal]
            name = "\x1f".join(str(value) for value in entry)
            by_day.setdefault(quiet_key.day, {})[name] = [*entry, count]
        items = []
        for day, counts in by_day.items():
            day_start = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
            ordered = sorted(counts.items())
            for number, start in enumerate(range(0, len(ordered), _QUIET_PER_ITEM)):
                items.append(
                    {
                        "pk": f"quiet#{day}",
                        "sk": f"{key}#{number}",
                        "etag": etag,
                        "counts": [value for _, value in ordered[start : start + _QUIET_PER_ITEM]],
                        "expires": self._table.kept_until(day_start + 86400),
                    }
                )
        self._table.put_many(items)

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
        now = time.time()
        pk, sk = file_key(key)
        known = self._table.get(pk, sk, now)
        if known is not None and known.get("file_status") == "done":
            known = None  # processed before: this is a new version's first failure
        attempt = Attempt(
            key, etag, reason, counts, max_attempts, retry_base_s, worker_died, max_deaths
        )
        before = known or {}
        state = after_failure(
            attempt, int(before.get("attempts", 0)), int(before.get("deaths", 0)), now
        )
        abandoned = state.status == "abandoned"
        item = self._item(state, now)
        if not abandoned:
            self._table.put(item)
            return state
        alert = own_alerts.file_abandoned(key, state.reason or reason, now)
        try:  # told like any alert, in the same transaction
            self._table.transact(
                [self._table.put_action(item), alert_action(self._table, alert, now)]
            )
        except ConditionFailed:  # its number taken (or told the same second): alone, then
            self._table.put(item)
            insert_alerts(self._table, [alert], now)
        return state

    def _item(self, state: FileState, now: float) -> Item:
        pk, sk = file_key(state.key)
        waiting = state.status == "failed"
        return {
            "pk": pk,
            "sk": sk,
            "file_key": state.key,
            "etag": state.etag,
            "file_status": state.status,
            "attempts": state.attempts,
            "deaths": state.deaths,
            "reason": state.reason,
            "next_retry_at": state.next_retry_at,
            "updated_at": now,
            "g1pk": FAILED if waiting else ABANDONED,
            "g1sk": state.key,
            # a file waiting for a retry is kept however long; one given up on, the retention
            "expires": None if waiting else self._table.kept_until(now),
        }

    def listed_through(self, prefixes: Sequence[str]) -> dict[str, date]:
        items = self._table.get_many([(f"listing#{part(p)}", "listing") for p in prefixes])
        return {str(i["prefix"]): date.fromisoformat(str(i["through"])) for i in items}

    def mark_listed(self, prefixes: Sequence[str], through: date) -> None:
        for prefix in prefixes:
            try:
                self._table.update(
                    f"listing#{part(prefix)}",
                    "listing",
                    "SET prefix = :prefix, through = :through",
                    "attribute_not_exists(through) OR through < :through",
                    prefix=prefix,
                    through=through.isoformat(),
                )
            except ConditionFailed:
                continue  # listed through a later day already

    def waiting_folders(self) -> list[str]:
        keys = (str(i["file_key"]) for i in self._table.query(FAILED, index="by_state"))
        return sorted({key.rsplit("/", 1)[0] + "/" for key in keys if "/" in key})

    def prune_files(self, older_than: float) -> int:
        """Nothing to delete: a file done or given up on expires STATE_RETENTION_DAYS after
        it was, with its events; expired leases are ignored and expire too."""
        return 0

    def abandoned_files(self, since: float = 0.0) -> list[FileState]:
        items = self._table.query(ABANDONED, index="by_state")
        return [_state(i) for i in items if float(i.get("updated_at", 0)) >= since]

    def retry(self, keys: Sequence[str] | None = None) -> list[str]:
        if keys is None:
            keys = [str(i["file_key"]) for i in self._table.query(ABANDONED, index="by_state")]
        back = []
        for key in keys:
            pk, sk = file_key(key)
            try:
                self._table.update(
                    pk,
                    sk,
                    "SET file_status = :failed, attempts = :zero, deaths = :zero,"
                    " next_retry_at = :zero, updated_at = :now, g1pk = :waiting REMOVE expires",
                    "file_status = :abandoned",
                    failed="failed",
                    zero=0,
                    now=time.time(),
                    waiting=FAILED,
                    abandoned="abandoned",
                )
            except ConditionFailed:
                continue
            back.append(key)
        return back

"""The alert outbox in DynamoDB: each dedup key once, claimed before it is posted.

An alert is one item, `alert#<id>`, put only where none is: that is the once, without a
transaction. Its number (what a button's value names) comes from the dedup key itself, a
53-bit hash: every process that inserts the same alert computes the same number, so the
conditional put decides. A number taken by another key (about 1 in 10^10 for a million
alerts) moves the key to its next probe, the same for everyone.

The alert sits in `by_state` under `outbox#pending` until delivered (by severity, then age),
then under `outbox#open` until acknowledged or muted; in `by_message` once a Slack message told
it; in `by_time` under its day.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from umbrellabot.model.alerts import Alert, alert_from_json, alert_to_json, dedup_key
from umbrellabot.storage.dynamodb.table import (
    ABSENT,
    ConditionFailed,
    Item,
    Table,
    moment,
    padded,
    part,
)
from umbrellabot.storage.ports import PendingAlert

PENDING = "outbox#pending"
OPEN = "outbox#open"
_PROBES = 8


def alert_key(alert_id: int) -> tuple[str, str]:
    return f"alert#{alert_id}", "alert"


def alert_id_of(key: str, probe: int = 0) -> int:
    """The number of dedup key `key` (its `probe`-th choice), 1 .. 2^53."""
    digest = hashlib.blake2b(f"{probe}\x1f{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) + 1


def message_partition(channel: str, ts: str) -> str:
    return f"msg#{part(channel)}#{part(ts)}"


def pending_of(item: Item, owner: str | None = None) -> PendingAlert:
    attempts = int(item.get("attempts", 0))
    claimant = item.get("claimed_by")
    if owner is not None and claimant not in (None, owner):
        attempts = max(attempts, 1)  # taken over: it may have been told, look first
    return PendingAlert(int(item["alert_id"]), alert_from_json(item["payload"]), attempts)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def find_alert(table: Table, key: str) -> Item | None:
    """The stored alert of dedup key `key`, following its probes."""
    for probe in range(_PROBES):
        item = table.get(*alert_key(alert_id_of(key, probe)))
        if item is None or item.get("dedup_key") == key:
            return item
    return None


def insert_alerts(table: Table, alerts: Sequence[Alert], now: float) -> int:
    """Into the outbox, each dedup key once (however many processes insert it at once);
    returns how many were new."""
    by_key = {dedup_key(alert): alert for alert in alerts}
    return sum(1 for key, alert in by_key.items() if insert_alert(table, key, alert, now))


def insert_alert(table: Table, key: str, alert: Alert, now: float) -> bool:
    for probe in range(_PROBES):
        item = _alert_item(table, alert_id_of(key, probe), key, alert, now)
        try:
            table.put(item, ABSENT, now=now)
            return True
        except ConditionFailed:
            held = table.get(item["pk"], item["sk"], now)
            if held is None or held.get("dedup_key") == key:
                return False  # inserted before (or meanwhile, by another process)
    raise ConditionFailed([f"no free number for alert {key!r} after {_PROBES} probes"])


def alert_action(table: Table, alert: Alert, now: float) -> dict[str, object]:
    """The put of one new alert for a transaction (its first number, where none is)."""
    key = dedup_key(alert)
    return table.put_action(_alert_item(table, alert_id_of(key), key, alert, now), ABSENT, now=now)


def _alert_item(table: Table, alert_id: int, key: str, alert: Alert, now: float) -> Item:
    pk, sk = alert_key(alert_id)
    age = f"{moment(now)}#{padded(alert_id)}"
    return {
        "pk": pk,
        "sk": sk,
        "alert_id": alert_id,
        "dedup_key": key,
        "rule_id": alert.rule_id,
        "event_id": alert.event_id,
        "severity": int(alert.severity),
        "payload": alert_to_json(alert),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": 0,
        "age_sk": age,  # the order of the open and recent lists
        "g1pk": PENDING,
        "g1sk": f"{9 - int(alert.severity)}#{age}",
        "g3pk": f"alerts#{_day(now)}",
        "g3sk": age,
        "expires": table.kept_until(now),
    }


def mark_told(table: Table, alert_id: int, now: float) -> None:
    """Delivered: out of the pending list, into the open one unless acknowledged or muted
    meanwhile."""
    pk, sk = alert_key(alert_id)
    sets = "SET delivered_at = :now"
    try:
        table.update(
            pk,
            sk,
            f"{sets}, g1pk = :open, g1sk = age_sk REMOVE claimed_by, claimed_until",
            "attribute_exists(pk) AND attribute_not_exists(acked_at)"
            " AND attribute_not_exists(muted_by)",
            now=now,
            open=OPEN,
        )
    except ConditionFailed:
        if table.get(pk, sk) is not None:  # acknowledged or muted: told, and nothing open
            table.update(pk, sk, f"{sets} REMOVE claimed_by, claimed_until, g1pk, g1sk", now=now)


class DynamoOutbox:
    def __init__(self, table: Table) -> None:
        self._table = table
        # What this handle knows without asking again: the claimants its last walk through
        # the pending alerts saw, and the alerts it claimed and has not told yet, by claimant.
        self._owners_seen: set[str] | None = None
        self._claimed: dict[str, set[int]] = {}  # every claimant of this handle, told or not

    def add_alerts(self, alerts: Sequence[Alert]) -> int:
        return insert_alerts(self._table, alerts, time.time())

    def _pending(self, now: float) -> Iterator[Item]:
        seen: set[str] = set()
        for item in self._table.query(PENDING, index="by_state"):  # TTL: the real time
            if item.get("claimed_by"):
                seen.add(str(item["claimed_by"]))
            if float(item.get("next_attempt_at", 0)) <= now:
                yield item
        self._owners_seen = seen  # a whole walk only

    def pending_alerts(self, limit: int = 1000, now: float | None = None) -> list[PendingAlert]:
        moment = time.time() if now is None else now
        found = []
        for item in self._pending(moment):
            found.append(pending_of(item))
            if len(found) >= limit:
                break
        return found

    def claim_pending(
        self, owner: str, limit: int = 1000, now: float | None = None, ttl_s: float = 600.0
    ) -> list[PendingAlert]:
        """Each pending alert claimed by a conditional write: of two processes, one wins."""
        moment = time.time() if now is None else now
        claimed: list[PendingAlert] = []
        for item in self._pending(moment):
            if not _free(item, owner, time.time()):
                continue
            pk, sk = alert_key(int(item["alert_id"]))
            try:
                before = self._table.update(
                    pk,
                    sk,
                    "SET claimed_by = :owner, claimed_until = :until",
                    "g1pk = :pending AND (attribute_not_exists(claimed_until)"
                    " OR claimed_until < :now OR claimed_by = :owner)",
                    returns="ALL_OLD",
                    owner=owner,
                    until=time.time() + ttl_s,
                    pending=PENDING,
                    now=time.time(),
                )
            except ConditionFailed:
                continue  # another process claimed it, or it was delivered meanwhile
            claimed.append(pending_of(before, owner))
            self._claimed.setdefault(owner, set()).add(claimed[-1].id)
            if len(claimed) >= limit:
                break
        return claimed

    def claim_owners(self) -> set[str]:
        """The claimants of pending alerts as the last whole walk through them saw them (a
        delivery round makes one): a claimant that died is let go of a round later, and an
        idle round costs one query, not three."""
        if self._owners_seen is None:
            for _ in self._pending(0.0):
                pass
        return set(self._owners_seen or ())

    def release_claims(self, owner: str, *, maybe_told: bool = False) -> None:
        """This handle's own claims from memory; another claimant's through the pending list."""
        change = "SET claimed_until = :zero" if maybe_told else "REMOVE claimed_by, claimed_until"
        if owner in self._claimed and not maybe_told:
            ids = sorted(self._claimed[owner])
            self._claimed[owner] = set()
        else:
            items = self._table.query(PENDING, index="by_state")
            ids = [int(i["alert_id"]) for i in items if i.get("claimed_by") == owner]
        for alert_id in ids:
            pk, sk = alert_key(alert_id)
            try:
                self._table.update(
                    pk,
                    sk,
                    change,
                    "claimed_by = :owner AND attribute_not_exists(delivered_at)",
                    owner=owner,
                    zero=0,
                )
            except ConditionFailed:
                continue

    def mark_delivered(self, alert_ids: Sequence[int]) -> None:
        now = time.time()
        for alert_id in alert_ids:
            mark_told(self._table, alert_id, now)
            self._forget_claim(alert_id)

    def _forget_claim(self, alert_id: int) -> None:
        for ids in self._claimed.values():
            ids.discard(alert_id)

    def record_message(self, alert_id: int, channel: str, ts: str) -> None:
        pk, sk = alert_key(alert_id)
        self._table.update(
            pk,
            sk,
            "SET message_channel = :channel, message_ts = :ts, g2pk = :message, g2sk = :id",
            "attribute_exists(pk)",
            channel=channel,
            ts=ts,
            message=message_partition(channel, ts),
            id=padded(alert_id),
        )

    def message_of(self, dedup_key: str) -> tuple[str, str] | None:
        item = find_alert(self._table, dedup_key)
        if item is None or not item.get("message_ts"):
            return None
        return str(item["message_channel"]), str(item["message_ts"])

    def mark_delivery_failed(self, alert_id: int, error: str, retry_at: float) -> None:
        pk, sk = alert_key(alert_id)
        self._table.update(
            pk,
            sk,
            "SET last_error = :error, next_attempt_at = :retry ADD attempts :one"
            " REMOVE claimed_by, claimed_until",
            "attribute_exists(pk)",
            error=error[:2000],
            retry=retry_at,
            one=1,
        )
        self._forget_claim(alert_id)

    def delivery_attempt(self, alert_id: int) -> tuple[int, float] | None:
        item = self._table.get(*alert_key(alert_id))
        if item is None:
            return None
        return int(item.get("attempts", 0)), float(item.get("next_attempt_at", 0))

    def recent_alerts(self, limit: int) -> list[Alert]:
        """The newest alerts, day partition by day partition back through the retention."""
        found: list[Alert] = []
        today = datetime.now(UTC).date()
        for back in range(int(self._table.retention_s // 86400) + 1):
            day = (today - timedelta(days=back)).isoformat()
            for item in self._table.query(
                f"alerts#{day}", index="by_time", newest_first=True, limit=limit - len(found)
            ):
                found.append(alert_from_json(item["payload"]))
            if len(found) >= limit:
                break
        return found

    def outbox_depth(self) -> int:
        return self._table.count(PENDING, index="by_state")

    def prune_outbox(self, older_than: float) -> int:
        """Nothing to delete: an alert's TTL is its creation plus STATE_RETENTION_DAYS, and
        every read ignores it after that."""
        return 0


def _free(item: Item, owner: str, now: float) -> bool:
    until = item.get("claimed_until")
    return until is None or float(until) < now or item.get("claimed_by") == owner

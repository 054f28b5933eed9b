"""`ports.Triage` in DynamoDB: an acknowledgement item per alert (put only where none is: the
first stays), listed newest first in `by_time`; mutes by number, the one active per (rule,
principal, account) found through a pointer item, the active ones listed in `by_state` by
their end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from umbrellabot.model.alerts import Alert, alert_from_json
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import Ack, Mute, MuteKey
from umbrellabot.storage.dynamodb.outbox import OPEN, alert_key, message_partition, pending_of
from umbrellabot.storage.dynamodb.rollups import rollup_by_parent, rollup_key
from umbrellabot.storage.dynamodb.table import (
    ABSENT,
    ConditionFailed,
    Item,
    Table,
    moment,
    padded,
    part,
)
from umbrellabot.storage.ports import PendingAlert, RollupWindow

ACKS = "acks"
MUTES = "mutes"
_TRIES = 10


def _ack(item: Item) -> Ack:
    return Ack(int(item["alert_id"]), str(item["ack_user"]), float(item["ack_at"]))


def _mute(item: Item) -> Mute:
    key = MuteKey(str(item["rule_id"]), str(item["principal_name"]), str(item["account_id"]))
    alert_id = item.get("alert_id")
    return Mute(
        int(item["mute_id"]),
        key,
        float(item["mute_until"]),
        str(item["muted_by"]),
        float(item["muted_at"]),
        int(alert_id) if alert_id is not None else None,
    )


class DynamoTriage:
    def __init__(self, table: Table) -> None:
        self._table = table

    def acknowledge(self, alert_id: int, user: str, at: float) -> Ack:
        ack = {
            "pk": f"ack#{alert_id}",
            "sk": "ack",
            "alert_id": alert_id,
            "ack_user": user,
            "ack_at": at,
            "g3pk": ACKS,
            "g3sk": f"{moment(at)}#{padded(alert_id)}",
            "expires": self._table.kept_until(at),
        }
        try:
            self._table.transact(
                [
                    self._table.put_action(ack, ABSENT, now=time.time()),
                    self._table.update_action(
                        *alert_key(alert_id), "SET acked_at = :at", "attribute_exists(pk)", at=at
                    ),
                ]
            )
        except ConditionFailed as failed:
            if failed.reasons[:1] != ["ConditionalCheckFailed"]:  # no such alert: the ack alone
                with contextlib.suppress(ConditionFailed):
                    self._table.put(ack, ABSENT, now=time.time())
        else:  # nothing open about it any more
            with contextlib.suppress(ConditionFailed):
                self._table.update(
                    *alert_key(alert_id), "REMOVE g1pk, g1sk", "g1pk = :open", open=OPEN
                )
        found = self.ack_of(alert_id)
        assert found is not None
        return found

    def acknowledge_thread(
        self, channel: str, ts: str, user: str, at: float
    ) -> RollupWindow | None:
        window = rollup_by_parent(self._table, channel, ts)
        if window is None:
            return None
        told = [
            item
            for item in self._table.query(message_partition(channel, ts), index="by_message")
            if str(item["sk"]) == "alert" and item.get("delivered_at") and not item.get("muted_by")
        ]
        for item in told:
            self.acknowledge(int(item["alert_id"]), user, at)
        acked = len(told)
        self._table.update(
            rollup_key(window.channel, window.rule_id, window.principal),
            moment(window.window_start),
            "SET acked_by = :user, acked_at = :at, acked_count = :acked",
            user=user,
            at=at,
            acked=acked,
        )
        return rollup_by_parent(self._table, channel, ts)

    def ack_of(self, alert_id: int) -> Ack | None:
        item = self._table.get(f"ack#{alert_id}", "ack")
        return _ack(item) if item else None

    def acks(self, limit: int) -> list[tuple[Ack, Alert]]:
        acks = [
            _ack(i)
            for i in self._table.query(ACKS, index="by_time", newest_first=True, limit=limit)
        ]
        alerts = {
            int(i["alert_id"]): alert_from_json(i["payload"])
            for i in self._table.get_many([alert_key(a.alert_id) for a in acks])
        }
        return [(ack, alerts[ack.alert_id]) for ack in acks if ack.alert_id in alerts]

    def add_mute(
        self, key: MuteKey, until: float, by: str, at: float, alert_id: int | None
    ) -> Mute:
        pointer = f"mutekey#{part(key.rule_id)}#{part(key.principal)}#{part(key.account)}"
        for _ in range(_TRIES):
            known = self._table.get(pointer, "mute")
            current = self._table.get(f"mute#{known['mute_id']}", "mute") if known else None
            if current is not None and float(current["mute_until"]) > at:
                return self._extend(int(current["mute_id"]), until, by, at)
            [mute_id] = self._table.next_ids("mutes", 1)
            mute = self._mute_item(mute_id, key, until, by, at, alert_id)
            try:
                self._table.transact(
                    [
                        self._table.put_action(mute),
                        self._table.put_action(
                            {"pk": pointer, "sk": "mute", "mute_id": mute_id},
                            "attribute_not_exists(pk) OR mute_id = :old",
                            old=int(known["mute_id"]) if known else 0,
                        ),
                    ]
                )
            except ConditionFailed:
                continue  # another mute of the same key came first: extend that one
            return _mute(mute)
        raise ConditionFailed(["mute contended"])

    def _mute_item(
        self, mute_id: int, key: MuteKey, until: float, by: str, at: float, alert_id: int | None
    ) -> Item:
        return {
            "pk": f"mute#{mute_id}",
            "sk": "mute",
            "mute_id": mute_id,
            "rule_id": key.rule_id,
            "principal_name": key.principal,
            "account_id": key.account,
            "mute_until": until,
            "muted_by": by,
            "muted_at": at,
            "alert_id": alert_id,
            "g1pk": MUTES,
            "g1sk": f"{moment(until)}#{padded(mute_id)}",
            "expires": self._table.kept_until(until),
        }

    def _extend(self, mute_id: int, until: float, by: str, at: float) -> Mute:
        """The same thing muted again: one mute, the later end."""
        changes: dict[str, Any] = {"by": by, "at": at}
        try:
            after = self._table.update(
                f"mute#{mute_id}",
                "mute",
                "SET muted_by = :by, muted_at = :at, mute_until = :until, g1sk = :sk,"
                " expires = :expires",
                "mute_until < :until",
                until=until,
                sk=f"{moment(until)}#{padded(mute_id)}",
                expires=self._table.kept_until(until),
                **changes,
            )
        except ConditionFailed:
            after = self._table.update(
                f"mute#{mute_id}", "mute", "SET muted_by = :by, muted_at = :at", **changes
            )
        return _mute(after)

    def active_mutes(self, now: float) -> list[Mute]:
        items = self._table.query(MUTES, index="by_state", sk_condition="#sk > :sk", sk=moment(now))
        return [_mute(i) for i in items if float(i["mute_until"]) > now]

    def mute_by_id(self, mute_id: int) -> Mute | None:
        item = self._table.get(f"mute#{mute_id}", "mute")
        return _mute(item) if item else None

    def end_mute(self, mute_id: int, now: float) -> Mute | None:
        try:
            after = self._table.update(
                f"mute#{mute_id}",
                "mute",
                "SET mute_until = :now, g1sk = :sk",
                "mute_until > :now",
                now=now,
                sk=f"{moment(now)}#{padded(mute_id)}",
            )
        except ConditionFailed:
            return None
        return _mute(after)

    def alert_by_id(self, alert_id: int) -> PendingAlert | None:
        item = self._table.get(*alert_key(alert_id))
        return pending_of(item) if item else None

    def mark_muted(self, alert_ids: Sequence[int], mute_id: int) -> None:
        now = time.time()
        for alert_id in alert_ids:
            self._table.update(
                *alert_key(alert_id),
                "SET delivered_at = :now, muted_by = :mute"
                " REMOVE claimed_by, claimed_until, g1pk, g1sk",
                "attribute_exists(pk)",
                now=now,
                mute=mute_id,
            )

    def open_alerts(
        self, since: float, limit: int
    ) -> tuple[dict[Severity, int], list[PendingAlert]]:
        found = [
            item
            for item in self._table.query(
                OPEN, index="by_state", sk_condition="#sk >= :sk", sk=moment(since)
            )
            if not item.get("acked_at") and not item.get("muted_by")
        ]
        by_severity: dict[Severity, int] = {}
        for item in found:
            severity = Severity(int(item["severity"]))
            by_severity[severity] = by_severity.get(severity, 0) + 1
        found.sort(key=lambda i: (-int(i["severity"]), -float(i["created_at"])))
        return by_severity, [pending_of(i) for i in found[:limit]]

"""Slack roll-up windows in DynamoDB: `rollup#<channel>#<rule>#<principal>`, one item per
window by its start; the window whose parent message is (channel ID, ts) is found through
`by_message`, beside the alerts told in that thread."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from umbrellabot.storage.dynamodb.outbox import OPEN, alert_key, message_partition
from umbrellabot.storage.dynamodb.table import ConditionFailed, Item, Table, moment, part
from umbrellabot.storage.ports import RollupWindow


def window_of(item: Item) -> RollupWindow:
    acked_at = item.get("acked_at")
    return RollupWindow(
        str(item["channel"]),
        str(item["rule_id"]),
        str(item["principal_name"]),
        float(item["window_start"]),
        int(item.get("alerts_told", 0)),
        item.get("parent_channel"),
        item.get("parent_ts"),
        item.get("first_event_time"),
        item.get("last_event_time"),
        item.get("acked_by"),
        float(acked_at) if acked_at is not None else None,
        int(item.get("acked_count", 0)),
    )


def rollup_key(channel: str, rule_id: str, principal: str) -> str:
    return f"rollup#{part(channel)}#{part(rule_id)}#{part(principal)}"


def rollup_by_parent(table: Table, channel: str, ts: str) -> RollupWindow | None:
    for found in table.query(
        message_partition(channel, ts),
        index="by_message",
        sk_condition="begins_with(#sk, :sk)",
        newest_first=True,
        limit=1,
        sk="rollup#",
    ):
        item = table.get(str(found["pk"]), str(found["sk"]))  # the index may lag behind
        return window_of(item) if item else None
    return None


class DynamoRollups:
    def __init__(self, table: Table) -> None:
        self._table = table

    def rollup_window(
        self, channel: str, rule_id: str, principal: str, since: float
    ) -> RollupWindow | None:
        """The window since `since` that has a parent, else the newest (two processes may
        each have started one)."""
        windows = list(
            self._table.query(
                rollup_key(channel, rule_id, principal), sk_condition="#sk > :sk", sk=moment(since)
            )
        )
        windows.sort(key=lambda i: (bool(i.get("parent_ts")), float(i["window_start"])))
        return window_of(windows[-1]) if windows else None

    def claim_parent(self, window: RollupWindow, owner: str, now: float, ttl_s: float) -> bool:
        """A claim item per (channel, rule, principal), taken by a conditional write; refused
        once a window since this one has a parent."""
        key = rollup_key(window.channel, window.rule_id, window.principal)
        since = moment(window.window_start - 1e-6)
        for item in self._table.query(key, sk_condition="#sk > :sk", sk=since):
            if item.get("parent_ts"):
                return False
        try:
            self._table.update(
                f"{key}#parent",  # beside the windows' partition (its parts are quoted)
                "claim",
                "SET claim_owner = :owner, held_until = :until, expires = :expires",
                "attribute_not_exists(pk) OR claim_owner = :owner OR held_until < :now",
                owner=owner,
                until=now + ttl_s,
                expires=now + ttl_s + 86400,
                now=now,
            )
        except ConditionFailed:
            return False
        return True

    def rollup_by_parent(self, channel: str, ts: str) -> RollupWindow | None:
        return rollup_by_parent(self._table, channel, ts)

    def save_rollup(self, window: RollupWindow, delivered: Sequence[int] = ()) -> None:
        """The delivered alerts marked first, then the window: a process killed in between
        leaves the window's count short, and never an alert to be posted again (DynamoDB's
        transactions would hold 100 items; each write here is safe to repeat)."""
        now = time.time()
        expression, condition = self._told(window)
        told: dict[str, Any] = {"now": now, "open": OPEN}
        if window.parent_channel and window.parent_ts:
            told |= {
                "pchannel": window.parent_channel,
                "pts": window.parent_ts,
                "message": message_partition(window.parent_channel, window.parent_ts),
            }
        for alert_id in delivered:
            with contextlib.suppress(ConditionFailed):  # no such alert (past its retention)
                self._table.update(*alert_key(alert_id), expression, condition, **told)
        expression, names = self._window_change(window, delivered, now)
        self._table.update(
            rollup_key(window.channel, window.rule_id, window.principal),
            moment(window.window_start),
            expression,
            **names,
        )

    def _window_change(
        self, window: RollupWindow, delivered: Sequence[int], now: float
    ) -> tuple[str, dict[str, Any]]:
        names: dict[str, Any] = {
            "channel": window.channel,
            "rule": window.rule_id,
            "principal": window.principal,
            "start": window.window_start,
            "base": window.alerts - len(delivered),  # what a new window starts from
            "added": len(delivered),
            "now": now,
            "expires": self._table.kept_until(now),
        }
        sets = [
            "channel = :channel, rule_id = :rule, principal_name = :principal,"
            " window_start = :start, alerts_told = if_not_exists(alerts_told, :base) + :added,"
            " updated_at = :now, expires = :expires"
        ]
        removes = []
        for attribute, name, value in (
            ("first_event_time", "first", window.first_event_time),
            ("last_event_time", "last", window.last_event_time),
        ):
            if value is None:
                removes.append(attribute)
            else:
                sets.append(f"{attribute} = :{name}")
                names[name] = value
        if window.parent_channel and window.parent_ts:
            sets.append(
                "parent_channel = if_not_exists(parent_channel, :pchannel),"
                " parent_ts = if_not_exists(parent_ts, :pts),"
                " g2pk = if_not_exists(g2pk, :message), g2sk = if_not_exists(g2sk, :wsk)"
            )
            names |= {
                "pchannel": window.parent_channel,
                "pts": window.parent_ts,
                "message": message_partition(window.parent_channel, window.parent_ts),
                "wsk": f"rollup#{moment(window.window_start)}",
            }
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return expression, names

    def _told(self, window: RollupWindow) -> tuple[str, str]:
        """Delivered, and told in the window's thread unless it has a message of its own:
        (update, condition)."""
        sets = "SET delivered_at = :now, g1pk = :open, g1sk = age_sk"
        if window.parent_channel and window.parent_ts:
            sets += (
                ", message_channel = if_not_exists(message_channel, :pchannel),"
                " message_ts = if_not_exists(message_ts, :pts),"
                " g2pk = if_not_exists(g2pk, :message), g2sk = if_not_exists(g2sk, age_sk)"
            )
        return f"{sets} REMOVE claimed_by, claimed_until", "attribute_exists(pk)"

    def prune_rollups(self, older_than: float) -> int:
        """Nothing to delete: windows expire (TTL), and a window older than the roll-up's
        is never asked for (`rollup_window` looks after `since`)."""
        return 0

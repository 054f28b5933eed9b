"""Cycles and duties in DynamoDB: one item per ingest cycle (`cycles`, by number), the moment
the last one that succeeded ended, and the leases of the work one process does for all."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from umbrellabot.storage.dynamodb.table import ConditionFailed, Table, padded

CYCLES = "cycles"
_COUNTS = ("files", "records", "alerts", "failures", "backlog", "error")


class DynamoCycleLog:
    def __init__(self, table: Table) -> None:
        self._table = table

    def start_cycle(self) -> int:
        [cycle_id] = self._table.next_ids("cycles", 1)
        now = time.time()
        self._table.put(
            {
                "pk": CYCLES,
                "sk": padded(cycle_id),
                "cycle_id": cycle_id,
                "started_at": now,
                "expires": self._table.kept_until(now),
            }
        )
        return cycle_id

    def finish_cycle(self, cycle_id: int, **counts: Any) -> None:
        now = time.time()
        given = {name: counts.get(name, 0 if name != "error" else None) for name in _COUNTS}
        sets = ", ".join(
            f"cycle_{name} = :{name}" for name, value in given.items() if value is not None
        )
        self._table.update(
            CYCLES,
            padded(cycle_id),
            f"SET finished_at = :now, {sets}",
            now=now,
            **{name: value for name, value in given.items() if value is not None},
        )
        if given["error"] is None:
            with contextlib.suppress(ConditionFailed):  # another process's cycle ended later
                self._table.update(
                    "cycle-success",
                    "last",
                    "SET finished_at = :now",
                    "attribute_not_exists(finished_at) OR finished_at < :now",
                    now=now,
                )

    def last_cycle(self) -> dict[str, Any] | None:
        for item in self._table.query(CYCLES, newest_first=True, limit=1):
            row: dict[str, Any] = {
                "id": item["cycle_id"],
                "started_at": item["started_at"],
                "finished_at": item.get("finished_at"),
            }
            row.update(
                {
                    name: item.get(f"cycle_{name}", 0 if name != "error" else None)
                    for name in _COUNTS
                }
            )
            return row
        return None

    def last_success_at(self) -> float | None:
        item = self._table.get("cycle-success", "last")
        return float(item["finished_at"]) if item else None

    def prune_cycles(self, older_than: float) -> int:
        """Nothing to delete: a cycle expires STATE_RETENTION_DAYS after it started."""
        return 0

    def hold_duty(self, name: str, owner: str, lease_s: float, now: float) -> bool:
        try:
            self._table.update(
                f"duty#{name}",
                "duty",
                "SET duty_owner = :owner, held_until = :until",
                "attribute_not_exists(pk) OR duty_owner = :owner OR held_until <= :now",
                owner=owner,
                until=now + lease_s,
                now=now,
            )
        except ConditionFailed:
            return False
        return True

    def release_duty(self, name: str, owner: str) -> None:
        self._table.delete(f"duty#{name}", "duty", "duty_owner = :owner", owner=owner)

"""`ports.DigestLog` in DynamoDB: a day's quiet counts in the partition `quiet#<day>` (added
by the file ledger's commit), and the days whose digest was claimed."""

from __future__ import annotations

from datetime import UTC, datetime

from umbrellabot.model.triage import QuietKey
from umbrellabot.storage.dynamodb.table import ABSENT, ConditionFailed, Table


class DynamoDigests:
    def __init__(self, table: Table) -> None:
        self._table = table

    def quiet_counts(self, day: str, min_severity: int) -> list[tuple[QuietKey, int]]:
        counts = [
            (
                QuietKey(
                    day,
                    str(i["rule_id"]),
                    int(i["severity"]),
                    str(i["account_id"]),
                    str(i["principal_name"]),
                ),
                int(i["quiet_count"]),
            )
            for i in self._table.query(f"quiet#{day}")
            if int(i["severity"]) >= min_severity
        ]
        return sorted(counts, key=lambda entry: -entry[1])

    def digest_posted(self, day: str) -> bool:
        return self._table.get(f"digest#{day}", "digest") is not None

    def record_digest(self, day: str, at: float) -> bool:
        day_start = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        try:
            self._table.put(
                {
                    "pk": f"digest#{day}",
                    "sk": "digest",
                    "posted_at": at,
                    "expires": self._table.kept_until(day_start + 86400),
                },
                ABSENT,
                now=at,
            )
        except ConditionFailed:
            return False
        return True

    def prune_quiet(self, before_day: str) -> int:
        """Nothing to delete: a day's counts and digest expire STATE_RETENTION_DAYS after it."""
        return 0

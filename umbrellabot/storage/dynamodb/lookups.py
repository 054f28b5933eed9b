"""`ports.LookupGuard` in DynamoDB: each user's engine lookups of the last minute in one item
(written only if nobody wrote it since it was read), misses until a time, and the messages a
process claimed to answer (one conditional put each)."""

from __future__ import annotations

from umbrellabot.storage.dynamodb.table import ABSENT, ConditionFailed, Table, part

WINDOW_S = 60.0
MENTION_KEEP_S = 86400.0  # Slack retries within minutes; a day is plenty
_TRIES = 10


class DynamoLookups:
    def __init__(self, table: Table) -> None:
        self._table = table

    def take_lookup(self, user: str, now: float, per_minute: int) -> bool:
        pk = f"lookups#{part(user)}"
        for _ in range(_TRIES):
            item = self._table.get(pk, "window")
            version = int(item.get("version", 0)) if item else 0
            recent = [float(t) for t in (item or {}).get("times", []) if float(t) > now - WINDOW_S]
            if per_minute > 0 and len(recent) >= per_minute:
                return False
            try:
                self._table.put(
                    {
                        "pk": pk,
                        "sk": "window",
                        "times": [*recent, now],
                        "version": version + 1,
                        "expires": now + 2 * WINDOW_S,
                    },
                    "attribute_not_exists(pk) OR version = :version",
                    version=version,
                )
            except ConditionFailed:
                continue  # another process counted one meanwhile: count again
            return True
        return False

    def remember_miss(self, event_id: str, until: float) -> None:
        self._table.put(
            {"pk": f"miss#{part(event_id)}", "sk": "miss", "until": until, "expires": until}
        )

    def known_miss(self, event_id: str, now: float) -> bool:
        return self._table.get(f"miss#{part(event_id)}", "miss", now) is not None

    def claim_mention(self, channel: str, ts: str, now: float) -> bool:
        try:
            self._table.put(
                {
                    "pk": f"mention#{part(channel)}#{part(ts)}",
                    "sk": "mention",
                    "expires": now + MENTION_KEEP_S,
                },
                ABSENT,
                now=now,
            )
        except ConditionFailed:
            return False
        return True

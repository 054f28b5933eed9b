"""The eventID index in DynamoDB: `event#<eventID>` -> the processed copy that holds it.
With INDEX_EVENTS=alerts (the default) only the events of alerts are written; the rest are
found through the query engine."""

from __future__ import annotations

from umbrellabot.storage.dynamodb.files import event_key
from umbrellabot.storage.dynamodb.table import Table
from umbrellabot.storage.ports import IndexedEvent


class DynamoEventIndex:
    def __init__(self, table: Table) -> None:
        self._table = table

    def find_event(self, event_id: str) -> IndexedEvent | None:
        item = self._table.get(*event_key(event_id))
        if item is None or not item.get("output_key"):
            return None
        return IndexedEvent(
            event_id, str(item["output_key"]), item.get("event_time"), item.get("priority")
        )

    def prune_events(self, older_than: float) -> int:
        """Nothing to delete: an entry expires with its file, STATE_RETENTION_DAYS after."""
        return 0

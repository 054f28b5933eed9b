"""`ports.DeliveryWatch` in DynamoDB: the newest log file of each account, one partition."""

from __future__ import annotations

from collections.abc import Iterable

from umbrellabot.storage.dynamodb.table import Table
from umbrellabot.storage.ports import Delivery

DELIVERIES = "deliveries"


class DynamoDeliveries:
    def __init__(self, table: Table) -> None:
        self._table = table

    def deliveries(self) -> dict[str, Delivery]:
        return {
            str(i["sk"]): Delivery(
                str(i["sk"]), str(i["last_key"]), float(i["last_modified"]), i.get("silent_alert")
            )
            for i in self._table.query(DELIVERIES)
        }

    def save_deliveries(self, deliveries: Iterable[Delivery]) -> None:
        self._table.put_many(
            [
                {
                    "pk": DELIVERIES,
                    "sk": d.account,
                    "last_key": d.last_key,
                    "last_modified": d.last_modified,
                    "silent_alert": d.silent_alert,
                }
                for d in {d.account: d for d in deliveries}.values()
            ]
        )

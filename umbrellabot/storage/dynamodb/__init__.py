"""The shared state in one DynamoDB table (STATE_BACKEND=dynamodb): the nine repositories of
`storage.ports` over `table.Table`, for several umbrellabot processes on several hosts."""

from __future__ import annotations

from typing import Any

import boto3

from umbrellabot.storage.aws import client_config
from umbrellabot.storage.dynamodb.cycles import DynamoCycleLog
from umbrellabot.storage.dynamodb.deliveries import DynamoDeliveries
from umbrellabot.storage.dynamodb.digests import DynamoDigests
from umbrellabot.storage.dynamodb.events import DynamoEventIndex
from umbrellabot.storage.dynamodb.files import DynamoFileLedger
from umbrellabot.storage.dynamodb.lookups import DynamoLookups
from umbrellabot.storage.dynamodb.outbox import DynamoOutbox
from umbrellabot.storage.dynamodb.rollups import DynamoRollups
from umbrellabot.storage.dynamodb.setup import SetupResult, check_table, setup_table
from umbrellabot.storage.dynamodb.table import StateError, Table
from umbrellabot.storage.dynamodb.triage import DynamoTriage

__all__ = ["DynamoState", "SetupResult", "StateError", "check_table", "connect", "setup_table"]


class DynamoState:
    """The nine repositories of `storage.ports` over one table."""

    def __init__(
        self, client: Any, table_name: str, *, retention_days: int, index_all_events: bool
    ) -> None:
        self.table = Table(client, table_name, retention_days)
        self.files = DynamoFileLedger(self.table, index_all_events=index_all_events)
        self.events = DynamoEventIndex(self.table)
        self.outbox = DynamoOutbox(self.table)
        self.rollups = DynamoRollups(self.table)
        self.cycles = DynamoCycleLog(self.table)
        self.deliveries = DynamoDeliveries(self.table)
        self.triage = DynamoTriage(self.table)
        self.lookups = DynamoLookups(self.table)
        self.digests = DynamoDigests(self.table)

    def close(self) -> None:
        self.table.client.close()


def connect(
    table_name: str,
    *,
    region: str | None,
    retention_days: int,
    index_all_events: bool,
    max_attempts: int = 10,
) -> DynamoState:
    """The state in `table_name`, through a client of the default credentials (the table is
    umbrellabot's own, not the trail account's); AWS_ENDPOINT_URL is honoured by botocore."""
    client = boto3.session.Session().client(
        "dynamodb", region_name=region, config=client_config(4, max_attempts)
    )
    return DynamoState(
        client, table_name, retention_days=retention_days, index_all_events=index_all_events
    )

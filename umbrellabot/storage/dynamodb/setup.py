"""`umbrellabot state setup`: the table, its three indexes and its TTL, made once (on-demand
capacity), and a check of an existing table's shape that names what differs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import WaiterError

from umbrellabot.storage.dynamodb.table import INDEXES, TTL_ATTRIBUTE, StateError, Table


@dataclass(frozen=True)
class SetupResult:
    created: bool
    ttl_enabled: bool  # TTL turned on by this setup


def _definition(name: str) -> dict[str, Any]:
    keys = {"pk", "sk"} | {k for pair in INDEXES.values() for k in pair}
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in sorted(keys)],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, (pk, sk) in INDEXES.items()
        ],
    }


def setup_table(table: Table) -> SetupResult:
    """Create the table unless it exists, wait until it is active, turn its TTL on."""
    created = False
    if _describe(table) is None:
        table.call("create_table", **_definition(table.name))
        created = True
    try:
        table.client.get_waiter("table_exists").wait(
            TableName=table.name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
    except WaiterError as err:
        raise StateError(f"DynamoDB table {table.name} did not become active: {err}") from None
    problem = check_table(table)
    if problem:
        raise StateError(problem)
    ttl = table.call("describe_time_to_live", TableName=table.name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return SetupResult(created, False)
    table.call(
        "update_time_to_live",
        TableName=table.name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return SetupResult(created, True)


def _describe(table: Table) -> dict[str, Any] | None:
    try:
        return dict(table.client.describe_table(TableName=table.name)["Table"])
    except table.client.exceptions.ResourceNotFoundException:
        return None


def check_table(table: Table) -> str | None:
    """What keeps the table from serving as the state, as a sentence; None when nothing."""
    described = table.call("describe_table", TableName=table.name)["Table"]
    keys = {(k["AttributeName"], k["KeyType"]) for k in described.get("KeySchema", [])}
    if keys != {("pk", "HASH"), ("sk", "RANGE")}:
        return (
            f"DynamoDB table {table.name} (DYNAMODB_TABLE) has the key schema {sorted(keys)},"
            " not pk (HASH) and sk (RANGE): it is not umbrellabot's; name a new table and run"
            " `umbrellabot state setup`"
        )
    present = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
    missing = sorted(set(INDEXES) - present)
    if missing:
        return (
            f"DynamoDB table {table.name} (DYNAMODB_TABLE) lacks the indexes {', '.join(missing)}:"
            " run `umbrellabot state setup` on a new table"
        )
    return None

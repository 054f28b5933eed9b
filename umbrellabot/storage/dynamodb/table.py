"""The one DynamoDB table of the shared state: its shape, items as plain dicts, expiry, and
errors as one sentence naming the table.

Single-table design. Every item has `pk` and `sk`; three overloaded global secondary indexes
hold the lists the repositories walk:

- `by_state` (`g1pk`, `g1sk`): what waits in some state — pending and open alerts, failed and
  abandoned files, active mutes, file leases by owner;
- `by_message` (`g2pk`, `g2sk`): what a Slack message told — the alerts and the roll-up whose
  message is (channel ID, ts);
- `by_time` (`g3pk`, `g3sk`): newest first — alerts by day, acknowledgements.

`expires` (epoch s) is the table's TTL attribute: STATE_RETENTION_DAYS is kept by DynamoDB
itself, not by deletes. DynamoDB deletes expired items late (within days; moto never), so
every read here ignores an item whose `expires` has passed, and every conditional write treats
it as absent.

boto3's synchronous client, like sqlite3: the ports are synchronous and called from worker
threads (`asyncio.to_thread`, the ingest's state thread); botocore clients are thread-safe.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

Item = dict[str, Any]

TTL_ATTRIBUTE: Final = "expires"
INDEXES: Final = {
    "by_state": ("g1pk", "g1sk"),
    "by_message": ("g2pk", "g2sk"),
    "by_time": ("g3pk", "g3sk"),
}
TRANSACTION_LIMIT: Final = 100  # items in one TransactWriteItems
_CONFLICT_TRIES: Final = 5
_PLACEHOLDER: Final = re.compile(r":\w+")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StateError(Exception):
    """The table cannot be used (missing, refused, unreachable after retries); one sentence."""


class ConditionFailed(Exception):
    """A conditional write found the item otherwise; `reasons` per item of a transaction."""

    def __init__(self, reasons: Sequence[str] = ()) -> None:
        super().__init__("condition failed")
        self.reasons = list(reasons)


def part(value: str) -> str:
    """One free-text part of a composite key, quoted so that no '#' in it can be confused."""
    return quote(value, safe="")


def padded(number: int) -> str:
    return f"{number:016d}"


def moment(seconds: float) -> str:
    """Epoch seconds as text that sorts like the number (for sort keys)."""
    return f"{max(seconds, 0.0):018.6f}"


def encode(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as DynamoDB attribute values; None values are left out (absent)."""
    return {k: _serializer.serialize(_numbers(v)) for k, v in item.items() if v is not None}


def values(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Expression attribute values (`:name`) as DynamoDB attribute values."""
    return {k: _serializer.serialize(_numbers(v)) for k, v in mapping.items()}


def decode(item: Mapping[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _numbers(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def live(item: Item | None, now: float | None = None) -> Item | None:
    """The item unless its TTL has passed (DynamoDB has not deleted it yet)."""
    if item is None:
        return None
    expires = item.get(TTL_ATTRIBUTE)
    if expires is not None and float(expires) <= (time.time() if now is None else now):
        return None
    return item


# a condition that treats an item past its TTL as absent
ABSENT: Final = "(attribute_not_exists(pk) OR expires <= :now)"


class Table:
    """The table, through one client; every call counted in `requests` by operation."""

    def __init__(self, client: Any, name: str, retention_days: int) -> None:
        self.client = client
        self.name = name
        self.retention_s = retention_days * 86400.0
        self.requests: dict[str, int] = {}

    def kept_until(self, since: float) -> float:
        """The TTL of something made at `since`: kept STATE_RETENTION_DAYS."""
        return since + self.retention_s

    def call(self, operation: str, **params: Any) -> Any:
        self.requests[operation] = self.requests.get(operation, 0) + 1
        try:
            return getattr(self.client, operation)(**params)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed() from None
            if code == "TransactionCanceledException":
                reasons = [
                    r.get("Code", "None") for r in err.response.get("CancellationReasons", [])
                ]
                raise ConditionFailed(reasons) from None
            raise StateError(self._sentence(operation, code, err)) from None
        except BotoCoreError as err:
            raise StateError(f"DynamoDB {operation} on DYNAMODB_TABLE {self.name}: {err}") from None

    def _sentence(self, operation: str, code: str, err: ClientError) -> str:
        message = str(err.response.get("Error", {}).get("Message", "")).strip()
        where = f"DynamoDB {operation} on DYNAMODB_TABLE {self.name}"
        if code == "ResourceNotFoundException":
            return f"{where}: the table does not exist (create it: `umbrellabot state setup`)"
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return f"{where}: {code}: {message} (see docs/iam-policy.json, StateTable)"
        return f"{where}: {code}: {message}".rstrip(": ")

    # -- single items ----------------------------------------------------------------------

    def get(self, pk: str, sk: str, now: float | None = None) -> Item | None:
        found = self.call(
            "get_item", TableName=self.name, Key=encode({"pk": pk, "sk": sk}), ConsistentRead=True
        ).get("Item")
        return live(decode(found), now) if found else None

    def get_many(self, keys: Sequence[tuple[str, str]], now: float | None = None) -> list[Item]:
        """BatchGetItem, 100 keys a request, unprocessed keys asked again."""
        found: list[Item] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            wanted: dict[str, Any] = {
                self.name: {
                    "Keys": [
                        encode({"pk": pk, "sk": sk}) for pk, sk in unique[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            while wanted:
                answer = self.call("batch_get_item", RequestItems=wanted)
                found.extend(decode(i) for i in answer.get("Responses", {}).get(self.name, []))
                wanted = answer.get("UnprocessedKeys") or {}
        return [item for item in found if live(item, now) is not None]

    def put(self, item: Item, condition: str | None = None, /, **names: Any) -> None:
        params: dict[str, Any] = {"TableName": self.name, "Item": encode(item)}
        _condition(params, condition, names)
        self.call("put_item", **params)

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        condition: str | None = None,
        /,
        *,
        returns: str = "ALL_NEW",
        **names: Any,
    ) -> Item:
        """UpdateItem; returns the item as it is after the update (`returns="ALL_OLD"`:
        before it)."""
        params: dict[str, Any] = {
            "TableName": self.name,
            "Key": encode({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
            "ReturnValues": returns,
        }
        _condition(params, condition, names)
        return decode(self.call("update_item", **params).get("Attributes", {}))

    def delete(self, pk: str, sk: str, condition: str | None = None, /, **names: Any) -> bool:
        """DeleteItem; False when the condition did not hold."""
        params: dict[str, Any] = {"TableName": self.name, "Key": encode({"pk": pk, "sk": sk})}
        _condition(params, condition, names)
        try:
            self.call("delete_item", **params)
        except ConditionFailed:
            return False
        return True

    def put_many(self, items: Sequence[Item]) -> None:
        """BatchWriteItem puts, 25 a request, unprocessed ones sent again (idempotent)."""
        for start in range(0, len(items), 25):
            pending: dict[str, Any] = {
                self.name: [{"PutRequest": {"Item": encode(i)}} for i in items[start : start + 25]]
            }
            while pending:
                pending = (
                    self.call("batch_write_item", RequestItems=pending).get("UnprocessedItems")
                    or {}
                )

    def next_ids(self, counter: str, count: int) -> range:
        """`count` new numbers of `counter` (outbox ids, mute ids, cycles), never given twice."""
        after = self.update("counter", counter, "ADD n :count", count=count)
        last = int(after["n"])
        return range(last - count + 1, last + 1)

    # -- transactions ----------------------------------------------------------------------

    def transact(self, actions: Sequence[dict[str, Any]]) -> None:
        """TransactWriteItems of prepared actions (`put_action`, `update_action`, ...); a
        conflict with another transaction is tried again, a failed condition raised."""
        for attempt in range(_CONFLICT_TRIES):
            try:
                self.call("transact_write_items", TransactItems=list(actions))
                return
            except ConditionFailed as failed:
                if "TransactionConflict" not in failed.reasons or attempt == _CONFLICT_TRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)

    def put_action(
        self, item: Item, condition: str | None = None, /, **names: Any
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"TableName": self.name, "Item": encode(item)}
        _condition(params, condition, names)
        return {"Put": params}

    def update_action(
        self, pk: str, sk: str, expression: str, condition: str | None = None, /, **names: Any
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableName": self.name,
            "Key": encode({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
        }
        _condition(params, condition, names)
        return {"Update": params}

    def count(self, pk: str, *, index: str) -> int:
        """How many items one index partition holds (Select=COUNT: no item is read out)."""
        params: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": INDEXES[index][0]},
            "ExpressionAttributeValues": values({":pk": pk}),
            "Select": "COUNT",
        }
        total = 0
        while True:
            answer = self.call("query", **params)
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        pk: str,
        /,
        *,
        index: str | None = None,
        sk_condition: str = "",
        sk: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        now: float | None = None,
    ) -> Iterator[Item]:
        """The live items of one partition (of the table or of an index), page by page;
        `sk_condition` on `#sk` and `:sk` (e.g. `begins_with(#sk, :sk)`, `#sk > :sk`)."""
        pk_name, sk_name = INDEXES[index] if index else ("pk", "sk")
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "#pk = :pk"
            + (f" AND {sk_condition}" if sk_condition else ""),
            "ExpressionAttributeNames": {
                "#pk": pk_name,
                **({"#sk": sk_name} if sk_condition else {}),
            },
            "ExpressionAttributeValues": values(
                {":pk": pk, **({":sk": sk} if sk_condition else {})}
            ),
            "ScanIndexForward": not newest_first,
        }
        if index:
            params["IndexName"] = index
        else:
            params["ConsistentRead"] = True
        given = 0
        while True:
            if limit is not None:
                params["Limit"] = max(limit - given, 1)
            answer = self.call("query", **params)
            for raw in answer.get("Items", []):
                item = live(decode(raw), now)
                if item is not None:
                    given += 1
                    yield item
                    if limit is not None and given >= limit:
                        return
            if "LastEvaluatedKey" not in answer:
                return
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _condition(params: dict[str, Any], condition: str | None, names: Mapping[str, Any]) -> None:
    """Condition and expression values (`name=value` for `:name`), `:now` always there."""
    if condition:
        params["ConditionExpression"] = condition
    if names or condition:
        given = {f":{k}": v for k, v in names.items()}
        if condition and ":now" in condition and ":now" not in given:
            given[":now"] = time.time()
        text = " ".join((condition or "", params.get("UpdateExpression", "")))
        used = {k: v for k, v in given.items() if k in set(_PLACEHOLDER.findall(text))}
        if used:
            params["ExpressionAttributeValues"] = values(used)

"""S3 event notifications, as they reach the queue: what objects a message announces. Pure.

Three shapes arrive: S3's own (`{"Records": [{"eventSource": "aws:s3", ...}]}`, keys URL-encoded
the form way: `+` is a space, `%2F` a slash), the same inside an SNS envelope (`{"Type":
"Notification", "Message": "<that JSON as text>"}`; with raw message delivery the body is S3's
own), and EventBridge's (`{"detail-type": "Object Created", "source": "aws.s3", "detail":
{...}}`, keys as they are). `s3:TestEvent`, which S3 sends when a notification is configured,
announces nothing. What is none of these is a `NotificationError` naming what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import orjson

MAX_ENVELOPES = 3  # SNS inside SNS is not a thing; more is a malformed or hostile message


class NotificationError(ValueError):
    """A message that is no S3 notification; str() says why."""


@dataclass(frozen=True)
class Announced:
    """One object a notification announces."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None


def announced_objects(body: str | bytes) -> list[Announced]:
    """The created objects a message body announces ([] for a test event or other events)."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise NotificationError(f"not JSON: {err}") from None
    for _ in range(MAX_ENVELOPES):
        if not isinstance(message, dict):
            raise NotificationError("not a JSON object")
        if message.get("Type") != "Notification" or "Message" not in message:
            break
        inner = message["Message"]  # SNS, not raw: the S3 notification as text
        try:
            message = orjson.loads(inner) if isinstance(inner, str) else inner
        except orjson.JSONDecodeError as err:
            raise NotificationError(f"SNS Message is not JSON: {err}") from None
    if not isinstance(message, dict):
        raise NotificationError("not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    if "Records" in message:
        return _from_s3(message["Records"])
    if message.get("source") == "aws.s3" and "detail" in message:
        return _from_eventbridge(message)
    raise NotificationError("neither an S3, an SNS nor an EventBridge S3 notification")


def _from_s3(records: Any) -> list[Announced]:
    if not isinstance(records, list):
        raise NotificationError("Records is not a list")
    found = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise NotificationError(f"Records[{index}] is not an object")
        if record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue  # a deletion, a restore...: nothing to read
        s3: Any = record.get("s3")
        bucket = _text(s3, "bucket", "name")
        key = _text(s3, "object", "key")
        if bucket is None or key is None:
            raise NotificationError(f"Records[{index}] has no s3.bucket.name or s3.object.key")
        obj = s3["object"]
        found.append(Announced(bucket, unquote_plus(key), _size(obj.get("size")), _etag(obj)))
    return found


def _from_eventbridge(message: dict[str, Any]) -> list[Announced]:
    if message.get("detail-type") != "Object Created":
        return []
    detail = message["detail"]
    bucket = _text(detail, "bucket", "name")
    key = _text(detail, "object", "key")
    if bucket is None or key is None:
        raise NotificationError("detail has no bucket.name or object.key")
    obj = detail["object"]
    return [Announced(bucket, key, _size(obj.get("size")), _etag(obj))]


def _text(value: Any, *path: str) -> str | None:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if isinstance(value, str) and value else None


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _etag(obj: dict[str, Any]) -> str | None:
    value = obj.get("eTag", obj.get("etag"))
    return value.strip('"') if isinstance(value, str) and value else None


def notification_for(bucket: str, key: str) -> str:
    """An S3 notification announcing `key` again (`umbrellabot retry` in INGEST_MODE=sqs)."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
        "umbrellabot": "retry",
    }
    return orjson.dumps({"Records": [record]}).decode()

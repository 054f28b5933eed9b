"""What a queue message announces: S3's own notifications (keys URL-encoded), the same in an
SNS envelope (raw or not), EventBridge's Object Created; test events and other events announce
nothing; what is no notification is an error naming why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from umbrellabot.model.notifications import Announced, NotificationError, announced_objects

KEY = "AWSLogs/o-abc1234567/111122223333/CloudTrail/us-east-1/2026/12/03/a b+c:d.json.gz"
ENCODED = "AWSLogs/o-abc1234567/111122223333/CloudTrail/us-east-1/2026/12/03/a+b%2Bc%3Ad.json.gz"


def s3_notification(key: str = ENCODED, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": event,
                "s3": {
                    "bucket": {"name": "trail", "arn": "arn:aws:s3:::trail"},
                    "object": {"key": key, "size": 812, "eTag": "0123abcd", "sequencer": "1"},
                },
            }
        ]
    }


def sns(message: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": "m", "Message": json.dumps(message)}


EXPECTED = [Announced("trail", KEY, 812, "0123abcd")]


def test_an_s3_notification_is_url_decoded() -> None:
    assert announced_objects(json.dumps(s3_notification())) == EXPECTED


def test_an_sns_envelope_and_raw_delivery_read_alike() -> None:
    assert announced_objects(json.dumps(sns(s3_notification()))) == EXPECTED
    assert announced_objects(json.dumps(s3_notification()).encode()) == EXPECTED


def test_eventbridge_object_created_keys_are_as_they_are() -> None:
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": "trail"},
            "object": {"key": KEY, "size": 812, "etag": "0123abcd"},
        },
    }
    assert announced_objects(json.dumps(event)) == EXPECTED
    assert announced_objects(json.dumps({**event, "detail-type": "Object Deleted"})) == []


def test_test_events_and_other_events_announce_nothing() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail"}
    assert announced_objects(json.dumps(test_event)) == []
    assert announced_objects(json.dumps(sns(test_event))) == []
    assert announced_objects(json.dumps(s3_notification(event="ObjectRemoved:Delete"))) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"Type": "Notification", "Message": "{oops"}', "SNS Message is not JSON"),
        ('{"Records": {}}', "Records is not a list"),
        (
            '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}',
            "no s3.bucket.name",
        ),
        ('{"hello": "world"}', "neither an S3"),
    ],
)
def test_what_is_no_notification_says_why(body: str, reason: str) -> None:
    with pytest.raises(NotificationError, match=reason):
        announced_objects(body)


def test_envelopes_inside_envelopes_stop() -> None:
    body: dict[str, Any] = s3_notification()
    for _ in range(5):
        body = sns(body)
    with pytest.raises(NotificationError):
        announced_objects(json.dumps(body))

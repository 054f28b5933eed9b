"""Test setup on moto's SQS: a queue, and S3 notifying it of a bucket's new objects."""

from __future__ import annotations

from typing import Any


def make_queue(sqs: Any, name: str) -> tuple[str, str]:
    """(URL, ARN) of a new queue."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def notify(s3: Any, bucket: str, queue_arn: str) -> None:
    """S3 announces every object created in `bucket` on the queue (moto sends a test event)."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )

"""Made-up CloudTrail records, log files and S3 layouts for tests."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"


def record(
    name: str = "DescribeInstances",
    source: str = "ec2.amazonaws.com",
    *,
    ip: str = "52.95.110.1",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "userName": "alice",
            "accountId": ACCOUNT_A,
            "arn": f"arn:aws:iam::{ACCOUNT_A}:user/alice",
        },
        "eventTime": "2026-11-29T10:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.22",
        "eventID": event_id or str(uuid.uuid4()),
        "recipientAccountId": ACCOUNT_A,
        **extra,
    }


def create_user(event_id: str | None = None) -> dict[str, Any]:
    return record(
        "CreateUser",
        "iam.amazonaws.com",
        event_id=event_id,
        requestParameters={"userName": "mallory"},
    )


def log_bytes(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}), mtime=0)


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def log_key(
    account: str, region: str, day: date, name: str, *, prefix: str = "", org: str | None = None
) -> str:
    org_part = f"{org}/" if org else ""
    return (
        f"{prefix}AWSLogs/{org_part}{account}/CloudTrail/{region}/{day:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{day:%Y%m%d}T1000Z_{name}.json.gz"
    )


def insight_record(
    state: str = "Start",
    event_name: str = "DeleteAccessKey",
    *,
    event_id: str | None = None,
    baseline: float = 0.0026,
    average: float = 12.0,
) -> dict[str, Any]:
    """A CloudTrail Insights record as a trail delivers it (CloudTrail-Insight/)."""
    return {
        "eventVersion": "1.07",
        "eventTime": f"{today():%Y-%m-%d}T10:00:00Z",
        "awsRegion": "us-east-1",
        "eventID": event_id or str(uuid.uuid4()),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT_A,
        "sharedEventID": str(uuid.uuid4()),
        "insightDetails": {
            "state": state,
            "eventSource": "iam.amazonaws.com",
            "eventName": event_name,
            "insightType": "ApiCallRateInsight",
            "insightContext": {
                "statistics": {
                    "baseline": {"average": baseline},
                    "insight": {"average": average},
                    "insightDuration": 1,
                    "baselineDuration": 10080,
                }
            },
        },
        "eventCategory": "Insight",
    }

"""Test-side S3 helpers over a plain boto3 client on moto (setup and checks, not the code under
test)."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from builders import log_bytes


def all_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def put(s3: Any, bucket: str, key: str, records: list[dict[str, Any]] | bytes) -> None:
    body = records if isinstance(records, bytes) else log_bytes(records)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def enriched(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [orjson.loads(line) for line in gzip.decompress(body).splitlines()]

"""Discovery and listing through the S3 adapter, against moto's server."""

from __future__ import annotations

from typing import Any

from builders import ACCOUNT_A, log_key, today
from conftest import moto_s3_backend

from umbrellabot.storage.discovery import day_prefixes, discover, list_log_files
from umbrellabot.storage.s3 import open_bucket


async def test_listings_past_1000_keys(s3: Any, bucket: str, aws_env: dict[str, str]) -> None:
    day_key = log_key(ACCOUNT_A, "us-east-1", today(), "x")
    folder = day_key.rsplit("/", 1)[0] + "/"
    backend = moto_s3_backend()
    for index in range(1050):  # straight into moto's store: 1,050 PUTs over HTTP take seconds
        backend.put_object(bucket, f"{folder}{ACCOUNT_A}_CloudTrail_{index:05d}.json.gz", b"")
    async with open_bucket(bucket, region=None, concurrency=4, max_attempts=2) as remote:
        found = await discover(remote, "", exclude=["processed/"])
        remote.requests.clear()
        listing = await list_log_files(remote, day_prefixes(found.regions, [today()]))
        files = listing.files
    assert len(files) == 1050
    assert remote.requests["ListObjectsV2"] == 2

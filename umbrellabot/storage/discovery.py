"""Finding CloudTrail log files in a bucket with delimiter listings.

From `CLOUDTRAIL_INITIAL_PREFIX` (one account's CloudTrail folder, as in the original system, or
anything above it: `AWSLogs/`, an organization, a custom trail prefix, the bucket root) every
account and region below is discovered; then only the day folders asked for are listed. The
number of requests depends on accounts x regions x days and never on how much history the
bucket holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from umbrellabot.model.layout import (
    AWS_LOGS,
    CLOUDTRAIL,
    INSIGHT,
    RegionFolder,
    is_account,
    is_event_log_key,
    is_org,
    is_region,
    locate,
    normalize_prefix,
)
from umbrellabot.storage.ports import ObjectInfo, ObjectStore, S3Refused

log = logging.getLogger(__name__)
SEARCH_DEPTH = 3  # folders searched above AWSLogs/ for a custom trail prefix
LISTING_CONCURRENCY = 16


@dataclass
class Discovery:
    regions: list[RegionFolder] = field(default_factory=list)  # of CloudTrail/ (events)
    insight_regions: list[RegionFolder] = field(default_factory=list)  # of CloudTrail-Insight/
    refused: list[S3Refused] = field(default_factory=list)  # account folders S3 refused


@dataclass
class Listing:
    """The log files under some folders, and the folders S3 refused to list."""

    files: list[ObjectInfo] = field(default_factory=list)
    refused: dict[str, S3Refused] = field(default_factory=dict)  # prefix -> refusal


def _last(folder: str) -> str:
    return folder.rstrip("/").rsplit("/", 1)[-1]


async def _account(
    s3: ObjectStore,
    prefix: str,
    account: str,
    org: str | None,
    out: Discovery,
) -> None:
    try:
        children = {_last(folder) for folder in await s3.list_folders(prefix)}
    except S3Refused as refused:  # one account's folder: the others are still read
        out.refused.append(refused)
        return
    for logs in (CLOUDTRAIL, INSIGHT):
        if logs in children:
            await _cloudtrail(s3, f"{prefix}{logs}/", account, org, out, logs)


async def _cloudtrail(
    s3: ObjectStore,
    prefix: str,
    account: str,
    org: str | None,
    out: Discovery,
    logs: str = CLOUDTRAIL,
) -> None:
    try:
        folders = await s3.list_folders(prefix)
    except S3Refused as refused:
        out.refused.append(refused)
        return
    found = out.insight_regions if logs == INSIGHT else out.regions
    for folder in folders:
        region = _last(folder)
        if is_region(region):
            found.append(RegionFolder(folder, account, region, org, logs))


async def _accounts(s3: ObjectStore, prefix: str, org: str | None, out: Discovery) -> None:
    tasks = []
    for folder in await s3.list_folders(prefix):
        name = _last(folder)
        if is_account(name):
            tasks.append(_account(s3, folder, name, org, out))
        elif is_org(name) and org is None:
            tasks.append(_accounts(s3, folder, name, out))
    await asyncio.gather(*tasks)


async def _search_above(
    s3: ObjectStore, prefix: str, exclude: tuple[str, ...], depth: int, out: Discovery
) -> None:
    """Find AWSLogs/ under a custom trail prefix, never inside our own output prefixes."""
    folders = [f for f in await s3.list_folders(prefix) if not f.startswith(exclude)]
    logs = [f for f in folders if _last(f) == AWS_LOGS]
    if logs:
        await _accounts(s3, logs[0], None, out)
        return
    if depth > 1:
        await asyncio.gather(*(_search_above(s3, f, exclude, depth - 1, out) for f in folders))


async def discover(s3: ObjectStore, initial_prefix: str, exclude: Iterable[str]) -> Discovery:
    """Every region folder below `initial_prefix`, of the event logs and of the Insights
    events (an account folder's `CloudTrail-Insight/`, when the prefix is at or above it).
    Raises layout.LayoutError for a prefix that cannot be a CloudTrail location."""
    prefix = normalize_prefix(initial_prefix)
    position = locate(prefix)
    out = Discovery()
    excluded = tuple(normalize_prefix(p) for p in exclude if normalize_prefix(p))
    if position.level == "above":
        await _search_above(s3, prefix, excluded, SEARCH_DEPTH, out)
    elif position.level in ("awslogs", "org"):
        await _accounts(s3, prefix, position.org, out)
    elif position.level == "account":
        assert position.account is not None
        await _account(s3, prefix, position.account, position.org, out)
    elif position.level == "cloudtrail":
        assert position.account is not None
        await _cloudtrail(s3, prefix, position.account, position.org, out)
    else:
        assert position.account is not None and position.region is not None
        out.regions.append(RegionFolder(prefix, position.account, position.region, position.org))
    out.regions.sort(key=lambda folder: folder.prefix)
    out.insight_regions.sort(key=lambda folder: folder.prefix)
    return out


def day_prefixes(regions: Iterable[RegionFolder], days: Iterable[date]) -> list[str]:
    day_list = list(days)
    return [region.day_prefix(day) for region in regions for day in day_list]


async def list_log_files(s3: ObjectStore, prefixes: Iterable[str]) -> Listing:
    """The event log files under the given (day or region) folders, digests left out; a
    folder S3 refuses to list is named in `refused`, the others are listed all the same."""
    limit = asyncio.Semaphore(LISTING_CONCURRENCY)
    listing = Listing()

    async def one(prefix: str) -> list[ObjectInfo]:
        async with limit:
            try:
                return await s3.list_objects(prefix)
            except S3Refused as refused:
                listing.refused[prefix] = refused
                return []

    pages = await asyncio.gather(*(one(prefix) for prefix in prefixes))
    listing.files = [item for page in pages for item in page if is_event_log_key(item.key)]
    return listing

"""CloudTrail's S3 key layout. Pure: parsing keys and planning which folders to list.

    [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
    [prefix/]AWSLogs/<o-xxxxxxxxxx>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz

Beside `CloudTrail/` an account folder may hold `CloudTrail-Digest/` (integrity digests, not
events) and `CloudTrail-Insight/` (Insights events: records of unusual API call or error rates,
laid out by region and day like the event logs, read and enriched beside them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

AWS_LOGS = "AWSLogs"
CLOUDTRAIL = "CloudTrail"
DIGEST = "CloudTrail-Digest"
INSIGHT = "CloudTrail-Insight"
LOG_SUFFIXES = (".json.gz", ".json")  # CloudTrail delivers .json.gz; local copies may be .json
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class LayoutError(ValueError):
    """A prefix that cannot be a CloudTrail location; the message says what to set instead."""


def is_account(segment: str) -> bool:
    return bool(_ACCOUNT.match(segment))


def is_org(segment: str) -> bool:
    return bool(_ORG.match(segment))


def is_region(segment: str) -> bool:
    return bool(_REGION.match(segment))


def normalize_prefix(prefix: str) -> str:
    """'' or a prefix ending in '/', without a leading '/'."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


@dataclass(frozen=True)
class RegionFolder:
    """One account's CloudTrail folder for one region: `.../CloudTrail/<region>/`."""

    prefix: str
    account: str
    region: str
    org: str | None = None
    logs: str = CLOUDTRAIL  # the account's folder it lies in: CLOUDTRAIL or INSIGHT

    @property
    def insights(self) -> bool:
        return self.logs == INSIGHT

    def day_prefix(self, day: date) -> str:
        return f"{self.prefix}{day:%Y/%m/%d}/"


@dataclass(frozen=True)
class Position:
    """Where a normalized prefix sits in the layout, and what is known from it."""

    level: str  # above | awslogs | org | account | cloudtrail | region
    org: str | None = None
    account: str | None = None
    region: str | None = None


def locate(prefix: str) -> Position:
    """Read what a prefix says: above AWSLogs/, at it, at an org, account, CloudTrail/ or region.
    Raises LayoutError for a prefix inside a region's date folders or not in the layout."""
    parts = [part for part in normalize_prefix(prefix).split("/") if part]
    if AWS_LOGS not in parts:
        return Position("above")
    rest = parts[parts.index(AWS_LOGS) + 1 :]
    org = rest.pop(0) if rest and is_org(rest[0]) else None
    if not rest:
        return Position("org" if org else "awslogs", org=org)
    account = rest.pop(0)
    if not is_account(account):
        raise LayoutError(f"{account!r} after AWSLogs/ is neither an account id nor an org id")
    if not rest:
        return Position("account", org, account)
    if rest.pop(0) != CLOUDTRAIL:
        raise LayoutError("only the CloudTrail/ folder of an account holds event logs")
    if not rest:
        return Position("cloudtrail", org, account)
    region = rest.pop(0)
    if rest or not is_region(region):
        raise LayoutError(
            "the prefix points inside a region's folder; use the region folder or one above it"
        )
    return Position("region", org, account, region)


_KEY_PLACE = re.compile(r"(?:^|/)(\d{12})/CloudTrail[^/]*/([a-z]{2}(?:-[a-z]+)+-\d+)/")


def region_folder_of(key: str) -> str | None:
    """The region folder (`.../<account>/CloudTrail/<region>/`) a key or prefix lies in."""
    match = _KEY_PLACE.search(key)
    return key[: match.end()] if match else None


def account_region_of(key: str) -> tuple[str | None, str | None]:
    """The account and region a log file's key names, where it names them."""
    match = _KEY_PLACE.search(key)
    return (match.group(1), match.group(2)) if match else (None, None)


def lookback_days(today: date, days: int) -> list[date]:
    """`days` day folders ending today (UTC): 2 gives yesterday and today."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def catch_up_days(
    today: date, lookback: int, max_catch_up: int, listed_through: date | None
) -> tuple[list[date], date | None]:
    """The day folders one region folder needs listed: the lookback window, and every day since
    it was last listed through (that day again: files may have come after), at most
    `max_catch_up` days back. The second value is the first day left out, when the gap is
    longer than that (what a backfill must cover), else None."""
    window = lookback_days(today, lookback)
    if listed_through is None or listed_through >= window[0]:
        return window, None
    earliest = today - timedelta(days=max(max_catch_up, lookback) - 1)
    first = max(listed_through, earliest)
    return days_between(first, today), (listed_through if listed_through < earliest else None)


def days_between(since: date, until: date) -> list[date]:
    if until < since:
        raise LayoutError(f"--until {until} is before --since {since}")
    return [since + timedelta(days=offset) for offset in range((until - since).days + 1)]


def is_log_name(name: str) -> bool:
    """A name CloudTrail log files have (.json.gz, or .json for local copies)."""
    return name.endswith(LOG_SUFFIXES)


def is_digest(key: str) -> bool:
    """An integrity digest (its folder or its name says CloudTrail-Digest), not events."""
    return DIGEST in key


def is_insight(key: str) -> bool:
    """A CloudTrail Insights file (its folder or its name says CloudTrail-Insight)."""
    return INSIGHT in key


def is_event_log_key(key: str) -> bool:
    """A CloudTrail log file: events or Insights events (not a digest, not a folder marker)."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(LOG_SUFFIXES) and f"_{DIGEST}_" not in name and f"/{DIGEST}/" not in key


def output_key(processed_prefix: str, key: str) -> str:
    """Where the enriched copy of `key` goes: the processed prefix + the original key, always
    ending in .json.gz (the copy is gzip)."""
    return normalize_prefix(processed_prefix) + (key + ".gz" if key.endswith(".json") else key)

"""What one ingest cycle did: counts, failures and the S3 requests it made. Plain data."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from umbrellabot.model.severity import Severity


@dataclass(frozen=True)
class AccessRefusal:
    """S3 or KMS refusing one action on one prefix or key: `sentence` says it for people."""

    action: str  # s3:ListBucket, s3:GetObject, kms:Decrypt...
    resource: str  # s3://bucket/prefix-or-key
    kms_key: str | None
    sentence: str


@dataclass
class CycleReport:
    """What one cycle did; `failed` and `abandoned` carry (key, reason)."""

    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    regions: int = 0
    listed: int = 0
    files: int = 0
    records: int = 0
    new_alerts: int = 0
    by_severity: Counter[Severity] = field(default_factory=Counter)
    failed: list[tuple[str, str]] = field(default_factory=list)
    abandoned: list[tuple[str, str]] = field(default_factory=list)
    waiting: int = 0  # failed files whose next retry is not due yet
    insight_regions: int = 0  # region folders of CloudTrail-Insight/, listed beside the others
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # S3 attempts that failed, by kind
    refusals: list[AccessRefusal] = field(default_factory=list)  # prefixes skipped, refused

"""The storage ports: small protocols between the cycle, delivery, the bot and the adapters
(SQLite: `storage.sqlite`; DynamoDB: `storage.dynamodb`), and the plain data they exchange."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from umbrellabot.model.alerts import Alert
from umbrellabot.model.report import AccessRefusal, CycleReport
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import Ack, Mute, MuteKey, QuietKey

IndexedEventRow = tuple[str, str | None, str | None]  # (eventID, eventTime, xpriority)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str | None
    size: int
    modified: float | None = None  # LastModified (epoch s): when the object was delivered


# What an ObjectStore raises (S3Bucket; LocalStore raises OS errors).


class S3AccessError(Exception):
    """S3 refused or cannot serve this bucket at all; str() is one sentence for the user.
    `refusals` carries the per-prefix refusals of a cycle that found nothing readable."""

    refusals: tuple[AccessRefusal, ...] = ()


class S3Refused(S3AccessError):
    """AccessDenied (of S3 or of the KMS key) on one key or prefix: other prefixes of the
    bucket may still be readable. `action` is the refused IAM action (s3:GetObject,
    kms:Decrypt), `resource` the s3:// location, `kms_key` the key's ARN when KMS refused."""

    def __init__(self, sentence: str, action: str, resource: str, kms_key: str | None) -> None:
        super().__init__(sentence)
        self.action = action
        self.resource = resource
        self.kms_key = kms_key

    def as_refusal(self) -> AccessRefusal:
        return AccessRefusal(self.action, self.resource, self.kms_key, str(self))


class S3TransientError(Exception):
    """One request failed after botocore's retries; the file is tried again next cycle."""


class ObjectStore(Protocol):
    """What ingestion and lookups need of a bucket; `S3Bucket` and `LocalStore` provide it."""

    bucket: str
    requests: Counter[str]  # requests made, by operation
    faults: Counter[str]  # failed attempts the client retried or gave up on, by kind

    async def list_folders(self, prefix: str) -> list[str]: ...
    async def list_objects(self, prefix: str) -> list[ObjectInfo]: ...
    async def download(self, key: str, target: Path) -> str | None: ...
    async def upload(self, source: Path, key: str) -> None: ...
    async def read(self, key: str) -> bytes: ...
    def location(self, key: str) -> str:
        """Where `key` is, for people: s3://bucket/key, or the file's path."""
        ...


@dataclass(frozen=True)
class FileState:
    key: str
    etag: str | None
    status: str  # done | failed | abandoned
    attempts: int  # failed reads of the whole file (a corrupt file)
    reason: str | None
    next_retry_at: float | None
    deaths: int = 0  # times its worker process died while it ran alone


class FileLedger(Protocol):
    """Every log file seen, and the one commit that makes a file done."""

    def file_states(self, prefixes: Sequence[str]) -> dict[str, FileState]: ...

    def record_done(
        self,
        key: str,
        etag: str | None,
        output: str,
        records: int,
        events: Iterable[IndexedEventRow],
        alerts: Sequence[Alert],
        quiet: Mapping[QuietKey, int] | None = None,
    ) -> int:
        """Atomically: the file done, its events indexed, its alerts in the outbox (each
        once), its matches below the alert threshold counted for the digest; returns how many
        alerts are new."""
        ...

    def record_failure(
        self,
        key: str,
        etag: str | None,
        reason: str,
        *,
        counts: bool,
        max_attempts: int,
        retry_base_s: float,
        worker_died: bool = False,
        max_deaths: int = 3,
    ) -> FileState:
        """A failed attempt: `counts` (the file itself is bad) towards `max_attempts`, a worker
        death towards `max_deaths`, anything else (S3 trouble) not at all. Giving up on a file
        puts the `umbrellabot-file-abandoned` alert into the outbox, atomically."""
        ...

    def listed_through(self, prefixes: Sequence[str]) -> dict[str, date]: ...  # per folder

    def mark_listed(self, prefixes: Sequence[str], through: date) -> None: ...
    def waiting_folders(self) -> list[str]: ...  # day folders of files waiting for a retry

    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease on one file: two processes on one state never work on the
        same file at once; a lease of a process that died expires."""
        ...

    def release(self, key: str, owner: str) -> None: ...
    def lease_owners(self) -> set[str]: ...
    def prune_files(self, older_than: float) -> int:
        """Forget files done or given up on before `older_than`, and expired leases."""
        ...

    def release_all(self, owner: str) -> int: ...  # every lease of a process known gone

    def abandoned_files(self, since: float = 0.0) -> list[FileState]: ...

    def retry(self, keys: Sequence[str] | None = None) -> list[str]:
        """Put abandoned files (`keys`, or all) back to be processed; returns those put back."""
        ...


@dataclass(frozen=True)
class IndexedEvent:
    event_id: str
    key: str
    event_time: str | None
    priority: str | None


class EventIndex(Protocol):
    """eventID -> the processed copy that holds it."""

    def find_event(self, event_id: str) -> IndexedEvent | None: ...
    def prune_events(self, older_than: float) -> int: ...


@dataclass(frozen=True)
class PendingAlert:
    id: int
    alert: Alert
    attempts: int


class AlertOutbox(Protocol):
    """Alerts waiting for delivery, each (eventID, rule) or (detection, group, window) once."""

    def add_alerts(self, alerts: Sequence[Alert]) -> int: ...
    def pending_alerts(self, limit: int = 1000, now: float | None = None) -> list[PendingAlert]: ...
    def claim_pending(
        self, owner: str, limit: int = 1000, now: float | None = None, ttl_s: float = 600.0
    ) -> list[PendingAlert]:
        """The pending alerts, claimed by `owner` so that no other process delivers them."""
        ...

    def claim_owners(self) -> set[str]: ...
    def prune_outbox(self, older_than: float) -> int: ...
    def release_claims(self, owner: str, *, maybe_told: bool = False) -> None: ...
    def mark_delivered(self, alert_ids: Sequence[int]) -> None: ...
    def record_message(self, alert_id: int, channel: str, ts: str) -> None:
        """The Slack message (channel ID, ts) that told this alert on its own."""
        ...

    def message_of(self, dedup_key: str) -> tuple[str, str] | None: ...
    def mark_delivery_failed(self, alert_id: int, error: str, retry_at: float) -> None: ...
    def delivery_attempt(self, alert_id: int) -> tuple[int, float] | None: ...
    def recent_alerts(self, limit: int) -> list[Alert]: ...
    def outbox_depth(self) -> int: ...


@dataclass
class RollupWindow:
    """Slack roll-up of one rule and principal in one channel, from `window_start` (epoch s):
    `alerts` delivered in it so far, and the parent message once there is one."""

    channel: str
    rule_id: str
    principal: str
    window_start: float
    alerts: int = 0
    parent_channel: str | None = None
    parent_ts: str | None = None
    first_event_time: str | None = None
    last_event_time: str | None = None
    # the acknowledgement of the thread from the parent: who, when, how many alerts it covered
    acked_by: str | None = None
    acked_at: float | None = None
    acked: int = 0


class RollupStore(Protocol):
    """Processes add to one roll-up: the count grows atomically, one parent (`claim_parent`)."""

    def rollup_window(  # started after `since`: the one with a parent, else the newest
        self, channel: str, rule_id: str, principal: str, since: float
    ) -> RollupWindow | None: ...

    def save_rollup(self, window: RollupWindow, delivered: Sequence[int] = ()) -> None:
        """Store the window, its count grown by len(`delivered`), and mark those ids delivered,
        atomically; with a parent, the delivered alerts without a message of their own are told
        in its thread. The acknowledgement fields are `Triage.acknowledge_thread`'s alone."""
        ...

    def claim_parent(self, window: RollupWindow, owner: str, now: float, ttl_s: float) -> bool:
        """Whether `owner` may post the parent of (channel, rule, principal): no window since
        `window.window_start` has one, and no other claim of the last `ttl_s` holds."""
        ...

    def rollup_by_parent(self, channel: str, ts: str) -> RollupWindow | None:
        """The roll-up whose parent message is (channel ID, ts)."""
        ...

    def prune_rollups(self, older_than: float) -> int: ...


@dataclass(frozen=True)
class Delivery:
    """The newest log file seen of one account (all regions), and the silence alert that is
    open for it (its dedup key), if any."""

    account: str
    last_key: str
    last_modified: float
    silent_alert: str | None = None


class DeliveryWatch(Protocol):
    """What LOG_SILENCE_HOURS remembers: per account, the newest file delivered."""

    def deliveries(self) -> dict[str, Delivery]: ...
    def save_deliveries(self, deliveries: Iterable[Delivery]) -> None: ...


@dataclass(frozen=True)
class QueueMessage:
    id: str
    receipt: str  # the handle that deletes it or extends its invisibility
    body: str


class WorkQueue(Protocol):
    """A queue of work announcements (SQS); raises QueueError. `requests` counts calls."""

    requests: Counter[str]

    def location(self) -> str: ...
    async def receive(self, limit: int, wait_s: int, hidden_s: int) -> list[QueueMessage]: ...
    async def delete(self, message: QueueMessage) -> None: ...
    async def hide(self, message: QueueMessage, hidden_s: int) -> None: ...
    async def send(self, body: str, attributes: dict[str, str]) -> None: ...


class CycleLog(Protocol):
    def start_cycle(self) -> int: ...
    def finish_cycle(self, cycle_id: int, **counts: Any) -> None: ...
    def last_cycle(self) -> dict[str, Any] | None: ...
    def last_success_at(self) -> float | None: ...  # the end of the last cycle without error

    def prune_cycles(self, older_than: float) -> int: ...
    def hold_duty(self, name: str, owner: str, lease_s: float, now: float) -> bool:
        """Take or renew the lease of work done once however many processes run (the holder's
        expires unless renewed); whether `owner` holds it now."""
        ...

    def release_duty(self, name: str, owner: str) -> None: ...


class Notifier(Protocol):
    """Tells people about alerts: Slack, or the console."""

    failures: int  # delivery rounds cut short so far (outage, refusal)

    async def deliver(self, alerts: Sequence[PendingAlert]) -> list[int]:
        """Tell people about `alerts`; return the ids of those delivered (or handled)."""
        ...

    async def post_cycle_summary(self, report: CycleReport) -> bool: ...


class Triage(Protocol):
    """Acknowledgements and mutes set from Slack (model/triage.py)."""

    def acknowledge(self, alert_id: int, user: str, at: float) -> Ack:
        """Store the acknowledgement; the first one of an alert stays (returned again)."""
        ...

    def acknowledge_thread(
        self, channel: str, ts: str, user: str, at: float
    ) -> RollupWindow | None:
        """Acknowledge every alert told in the thread of the roll-up parent (channel ID, ts)
        that nobody acknowledged, and record it on the roll-up; None when no roll-up has that
        parent."""
        ...

    def ack_of(self, alert_id: int) -> Ack | None: ...
    def acks(self, limit: int) -> list[tuple[Ack, Alert]]: ...
    def add_mute(
        self, key: MuteKey, until: float, by: str, at: float, alert_id: int | None
    ) -> Mute:
        """A mute of `key` until `until`; one that is active already is extended instead."""
        ...

    def active_mutes(self, now: float) -> list[Mute]: ...
    def mute_by_id(self, mute_id: int) -> Mute | None: ...
    def end_mute(self, mute_id: int, now: float) -> Mute | None:
        """Make the mute expire now; None when there is no active mute of that id."""
        ...

    def alert_by_id(self, alert_id: int) -> PendingAlert | None:
        """The stored alert of an outbox id (what a button's value names)."""
        ...

    def mark_muted(self, alert_ids: Sequence[int], mute_id: int) -> None:
        """Delivered as muted: kept, counted, never posted."""
        ...

    def open_alerts(
        self, since: float, limit: int
    ) -> tuple[dict[Severity, int], list[PendingAlert]]:
        """Alerts told since `since` that nobody acknowledged (and no mute silenced): the
        count by severity, and the newest `limit` of them."""
        ...


class LookupGuard(Protocol):
    """What keeps pasted UUIDs from running up a query bill: engine lookups per user per
    minute, and misses remembered for a while (CloudTrail delivers late, so not for long)."""

    def take_lookup(self, user: str, now: float, per_minute: int) -> bool:
        """Count one engine lookup of `user` unless `per_minute` were made in the last 60 s."""
        ...

    def remember_miss(self, event_id: str, until: float) -> None: ...
    def known_miss(self, event_id: str, now: float) -> bool: ...
    def claim_mention(self, channel: str, ts: str, now: float) -> bool:
        """Whether this process is the first to claim the message (processes share the app)."""
        ...


class DigestLog(Protocol):
    """The quiet matches of each day, and which days' digests were posted."""

    def quiet_counts(self, day: str, min_severity: int) -> list[tuple[QuietKey, int]]: ...
    def digest_posted(self, day: str) -> bool: ...
    def record_digest(self, day: str, at: float) -> bool:
        """Claim the day's digest; False when it was posted (or claimed) before."""
        ...

    def prune_quiet(self, before_day: str) -> int: ...


class StateBackend(Protocol):
    """The nine repositories of one state backend (SQLite, DynamoDB), and closing it."""

    @property
    def files(self) -> FileLedger: ...
    @property
    def events(self) -> EventIndex: ...
    @property
    def outbox(self) -> AlertOutbox: ...
    @property
    def rollups(self) -> RollupStore: ...
    @property
    def cycles(self) -> CycleLog: ...
    @property
    def deliveries(self) -> DeliveryWatch: ...
    @property
    def triage(self) -> Triage: ...
    @property
    def lookups(self) -> LookupGuard: ...
    @property
    def digests(self) -> DigestLog: ...
    def close(self) -> None: ...

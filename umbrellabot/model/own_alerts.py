"""Alerts umbrellabot raises about itself: what it could not do, told like any other alert so
that it reaches the same people through the same outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from umbrellabot.model.alerts import Alert
from umbrellabot.model.facts import FACT_FIELDS
from umbrellabot.model.layout import account_region_of
from umbrellabot.model.report import AccessRefusal
from umbrellabot.model.severity import Severity

FILE_ABANDONED = "umbrellabot-file-abandoned"
SOURCE = "umbrellabot"


def _own_alert(**values: Any) -> Alert:
    """An alert about umbrellabot itself: high, by umbrellabot, with the event's facts it names
    (the others none)."""
    facts: dict[str, Any] = dict.fromkeys(FACT_FIELDS)
    facts.update(values, event_source=SOURCE, severity=Severity.HIGH, author=SOURCE)
    return Alert(**facts)


def file_abandoned(key: str, reason: str, at: float) -> Alert:
    """A log file umbrellabot stopped trying: its events are not enriched, indexed or alerted
    on until someone looks. Deduplicated per file and moment given up."""
    account, region = account_region_of(key)
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _own_alert(
        event_time=when,
        event_name="FileAbandoned",
        account=account,
        region=region,
        error_code=reason[:200],
        rule_id=FILE_ABANDONED,
        rule_title="A CloudTrail log file was given up on",
        runbook=(
            f"umbrellabot could not process this file and stopped trying: {reason}. Its events"
            " are not enriched, indexed or alerted on. Look at the file, fix what is wrong"
            f" (permissions, the file itself, the worker's memory), then run `umbrellabot retry"
            f" {key}` (or `umbrellabot retry --all`)."
        ),
        source_file=key,
        group_key=f"{key}@{when}",
    )


RECORD_TOO_LARGE = "umbrellabot-record-too-large"


def record_too_large(
    facts: dict[str, str], size: int, limit: int, source_file: str | None, index: int
) -> Alert:
    """A record over MAX_RECORD_BYTES: copied unparsed, so no rule looked at it. CloudTrail's
    own records are far smaller; one this size is a fault or padding meant to hide an event."""
    event_id = facts.get("eventID")
    return _own_alert(
        event_id=event_id,
        event_time=facts.get("eventTime"),
        event_source=facts.get("eventSource"),
        event_name=facts.get("eventName"),
        account=facts.get("recipientAccountId"),
        region=facts.get("awsRegion"),
        source_ip=facts.get("sourceIPAddress"),
        rule_id=RECORD_TOO_LARGE,
        rule_title="A CloudTrail record too large to evaluate",
        runbook=(
            f"Record {index} of this file is {size:,} bytes, over MAX_RECORD_BYTES ({limit:,}):"
            " it was copied to the enriched output unparsed, marked with this rule in xrules,"
            " and no other rule evaluated it. CloudTrail's records are far smaller: look at the"
            " file for a fault, or for padding (a huge userAgent or request) meant to hide an"
            " event from detection."
        ),
        source_file=source_file,
        group_key=None if event_id else f"{source_file}#{index}",
    )


ACCESS_DENIED = "umbrellabot-access-denied"


def access_denied(refusal: AccessRefusal, at: float) -> Alert:
    """S3 or KMS refused umbrellabot one prefix: its logs wait, unread, until it is allowed.
    Told once a day per action, resource and key while it lasts."""
    account, region = account_region_of(refusal.resource)
    day = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
    key = f" with the key {refusal.kms_key}" if refusal.kms_key else ""
    return _own_alert(
        event_time=datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        event_name="AccessDenied",
        account=account,
        region=region,
        error_code=refusal.action,
        rule_id=ACCESS_DENIED,
        rule_title=f"umbrellabot may not {refusal.action} on {refusal.resource}{key}",
        runbook=(
            f"{refusal.sentence}. The logs there are not read, enriched or alerted on until"
            " it is allowed; the other prefixes are read as usual, and the skipped files are"
            " read in the first cycle after the permission is fixed."
        ),
        source_file=refusal.resource,
        group_key=f"{refusal.action}|{refusal.resource}|{refusal.kms_key}|{day}",
    )


DELIVERY_SILENT = "cloudtrail-delivery-silent"
DELIVERY_RESUMED = "cloudtrail-delivery-resumed"


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_silent(account: str, last_key: str, last_modified: float, hours: float) -> Alert:
    """No log file from `account`, in any region, for `hours`: a trail stopped outside
    CloudTrail's own API, a broken bucket policy, a lost permission. Once per silence."""
    account_of, region = account_region_of(last_key)
    return _own_alert(
        event_time=_utc(last_modified),
        event_name="DeliverySilent",
        account=account,
        region=region if account_of == account else None,
        rule_id=DELIVERY_SILENT,
        rule_title=f"No CloudTrail log file from account {account} for {hours:g} hours",
        runbook=(
            f"The last log file of account {account} (any region) was delivered at"
            f" {_utc(last_modified)}: {last_key}. Check that its trail still logs"
            " (`aws cloudtrail get-trail-status`), the bucket policy and the KMS key policy;"
            " a stopped trail, a deleted trail or a lost permission look like this."
            " A line follows in this thread when files arrive again (LOG_SILENCE_HOURS)."
        ),
        source_file=last_key,
        group_key=f"{account}|{last_key}",
    )


def delivery_resumed(account: str, silent: str, key: str, modified: float, since: float) -> Alert:
    """Files from `account` again: told in the thread of the silence alert `silent`."""
    hours = max(modified - since, 0) / 3600
    return _own_alert(
        event_time=_utc(modified),
        event_name="DeliveryResumed",
        account=account,
        region=account_region_of(key)[1],
        rule_id=DELIVERY_RESUMED,
        rule_title=f"Log files from account {account} arrive again, after {hours:.1f} hours",
        runbook=f"The first new file was delivered at {_utc(modified)}: {key}.",
        source_file=key,
        group_key=f"{account}|{key}",
        reply_to=silent,
    )

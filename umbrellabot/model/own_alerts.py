"""Alerts umbrellabot raises about itself: what it could not do, told like any other alert so
that it reaches the same people through the same outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from umbrellabot.model.alerts import Alert
from umbrellabot.model.layout import account_region_of
from umbrellabot.model.severity import Severity

FILE_ABANDONED = "umbrellabot-file-abandoned"
SOURCE = "umbrellabot"


def file_abandoned(key: str, reason: str, at: float) -> Alert:
    """A log file umbrellabot stopped trying: its events are not enriched, indexed or alerted
    on until someone looks. Deduplicated per file and moment given up."""
    account, region = account_region_of(key)
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Alert(
        event_id=None,
        event_time=when,
        event_source=SOURCE,
        event_name="FileAbandoned",
        principal=None,
        identity_type=None,
        account=account,
        region=region,
        source_ip=None,
        country=None,
        user_agent=None,
        error_code=reason[:200],
        rule_id=FILE_ABANDONED,
        rule_title="A CloudTrail log file was given up on",
        severity=Severity.HIGH,
        runbook=(
            f"umbrellabot could not process this file and stopped trying: {reason}. Its events"
            " are not enriched, indexed or alerted on. Look at the file, fix what is wrong"
            f" (permissions, the file itself, the worker's memory), then run `umbrellabot retry"
            f" {key}` (or `umbrellabot retry --all`)."
        ),
        author=SOURCE,
        source_file=key,
        group_key=f"{key}@{when}",
    )

"""Triage of alerts from Slack: who acknowledged an alert, and which (rule, principal, account)
is muted until when. Pure data and the mute's key; stored behind `storage.ports.Triage`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from umbrellabot.model.alerts import Alert

MUTE_DURATIONS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


@dataclass(frozen=True)
class Ack:
    alert_id: int
    user: str  # Slack user ID
    at: float  # epoch s


@dataclass(frozen=True)
class MuteKey:
    """What a mute silences: one rule for one principal in one account. Alerts without a
    principal (detections, silence) are muted per rule and account."""

    rule_id: str
    principal: str
    account: str

    @classmethod
    def of(cls, alert: Alert) -> MuteKey:
        return cls(alert.rule_id, alert.principal or "", alert.account or "")

    def describe(self) -> str:
        who = f" for {self.principal}" if self.principal else ""
        where = f" in account {self.account}" if self.account else ""
        return f"{self.rule_id}{who}{where}"


@dataclass(frozen=True)
class Mute:
    id: int
    key: MuteKey
    until: float  # epoch s
    by: str  # Slack user ID
    at: float
    alert_id: int | None = None  # the alert it was set from

    def active(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class QuietKey:
    """What the daily digest counts: a rule's matches below ALERT_MIN_SEVERITY, per UTC day,
    account and principal (the quiet ones, seen without the noise)."""

    day: str  # YYYY-MM-DD of the event
    rule_id: str
    severity: int
    account: str
    principal: str

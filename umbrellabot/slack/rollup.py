"""The roll-up algorithm, pure: which alerts are posted on their own and which go into the
thread of one parent message, per channel, rule and principal, in windows of M minutes.

The first N alerts of a window (`threshold`) are posted on their own; from the next one on, a
parent message ("K alerts for P within M minutes") holds the rest in its thread. A burst of 500
alerts of one rule and principal is N + 1 + 5 posts, not 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from umbrellabot.model.alerts import Alert
from umbrellabot.storage.ports import PendingAlert, RollupWindow

RollupKey = tuple[str, str]  # (rule id, principal)


@dataclass(frozen=True)
class RollupShape:
    """SLACK_ROLLUP_THRESHOLD and SLACK_ROLLUP_WINDOW_MINUTES: what a parent message says."""

    threshold: int = 5
    window_minutes: int = 10

    def individual(self, window: RollupWindow) -> int:
        """How many of the window's alerts were posted on their own."""
        return min(max(self.threshold, 1), window.alerts)

    def in_thread(self, window: RollupWindow) -> int:
        return window.alerts - self.individual(window)


DEFAULT_SHAPE = RollupShape()


def rollup_key(alert: Alert) -> RollupKey:
    return (alert.rule_id, alert.principal or "")


@dataclass
class RollupPlan:
    windows: dict[RollupKey, RollupWindow] = field(default_factory=dict)
    individual: list[tuple[RollupKey, PendingAlert]] = field(default_factory=list)
    rolled: dict[RollupKey, list[PendingAlert]] = field(default_factory=dict)


def plan_rollups(
    items: Sequence[PendingAlert],
    window_of: Callable[[RollupKey], RollupWindow],
    threshold: int,
) -> RollupPlan:
    """Split one channel's alerts, in order, given each key's current window (`window_of`)."""
    plan = RollupPlan()
    counted: dict[RollupKey, int] = {}
    for pending in items:
        key = rollup_key(pending.alert)
        if key not in plan.windows:
            plan.windows[key] = window_of(key)
            counted[key] = plan.windows[key].alerts
        if counted[key] < threshold:
            plan.individual.append((key, pending))
        else:
            plan.rolled.setdefault(key, []).append(pending)
        counted[key] += 1
    return plan


def event_span(window: RollupWindow, alerts: Sequence[Alert]) -> tuple[str | None, str | None]:
    """The first and last eventTime of the window with `alerts` added."""
    times = [t for t in (window.first_event_time, window.last_event_time) if t]
    times += [a.event_time for a in alerts if a.event_time]
    return (min(times), max(times)) if times else (None, None)


def extend_window(window: RollupWindow, alerts: Sequence[Alert]) -> None:
    window.first_event_time, window.last_event_time = event_span(window, alerts)

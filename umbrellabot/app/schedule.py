"""When cycles run (SCHEDULE, a cron expression in UTC, or every POLL_INTERVAL seconds), and how
old the last successful cycle may be before `/readyz` says the daemon is not ready."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from umbrellabot.config import Settings

MIN_CYCLE_AGE_S = 900.0
MISSED_CYCLES = 3  # not ready once this many cycles in a row did not succeed
_LOOKAHEAD = timedelta(days=8)  # a weekly cron's longest gap is within it


def trigger(settings: Settings) -> Any:
    """The APScheduler trigger of the ingest cycles."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if settings.schedule:
        return CronTrigger.from_crontab(settings.schedule, timezone=UTC)
    return IntervalTrigger(seconds=settings.poll_interval, timezone=UTC)


def longest_gap_s(settings: Settings, now: datetime | None = None) -> float:
    """The longest time between two cycles: POLL_INTERVAL, or the longest gap between the cron
    schedule's fire times over the next week (`0 9 * * 1-5` has a weekend in it)."""
    if not settings.schedule:
        return float(settings.poll_interval)
    cron = trigger(settings)
    start = (now or datetime.now(UTC)).astimezone(UTC)
    previous = cron.get_next_fire_time(None, start)
    longest = 0.0
    while previous is not None and previous - start < _LOOKAHEAD:
        following = cron.get_next_fire_time(previous, previous + timedelta(seconds=1))
        if following is None:
            break
        longest = max(longest, (following - previous).total_seconds())
        previous = following
    return longest or _LOOKAHEAD.total_seconds()


def cycle_age_limit_s(settings: Settings, now: datetime | None = None) -> float:
    """How old the last successful cycle may be and the daemon still be ready."""
    return max(MISSED_CYCLES * longest_gap_s(settings, now), MIN_CYCLE_AGE_S)

"""The cycle schedule and the cycle age /readyz allows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from umbrellabot.app.health import Readiness
from umbrellabot.app.schedule import cycle_age_limit_s, longest_gap_s
from umbrellabot.config import Settings

FRIDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "gap", "limit"),
    [
        ({"poll_interval": 300}, 300, 900),  # three cycles is less than the floor
        ({"poll_interval": 600}, 600, 1800),
        ({"schedule": "*/10 * * * *"}, 600, 1800),
        ({"schedule": "0 * * * *"}, 3600, 3 * 3600),
        ({"schedule": "0 9 * * 1-5"}, 3 * 86400, 9 * 86400),  # Friday 09:00 to Monday 09:00
    ],
    ids=["interval-5m", "interval-10m", "cron-10m", "cron-hourly", "cron-weekdays"],
)
def test_the_allowed_cycle_age_follows_the_schedule(
    values: dict[str, Any], gap: float, limit: float
) -> None:
    chosen = settings(**values)
    assert longest_gap_s(chosen, FRIDAY_NOON) == gap
    assert cycle_age_limit_s(chosen, FRIDAY_NOON) == limit


async def test_an_hourly_schedule_is_ready_between_its_cycles() -> None:
    hourly = settings(schedule="0 * * * *")
    readiness = Readiness(max_cycle_age_s=cycle_age_limit_s(hourly), slack_enabled=False)
    readiness.last_success_at = time.time() - 45 * 60  # the last cycle, 45 minutes ago
    assert await readiness.problems() == []
    readiness.last_success_at = time.time() - 4 * 3600  # three hourly cycles missed
    [problem] = await readiness.problems()
    assert problem.startswith("the last successful cycle is older than 10800s")

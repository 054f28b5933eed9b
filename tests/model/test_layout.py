"""CloudTrail's key layout: day folders after a downtime, and what a key says."""

from __future__ import annotations

from datetime import date, timedelta

from umbrellabot.model.layout import account_region_of, catch_up_days

TODAY = date(2026, 12, 2)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def test_the_lookback_window_when_nothing_was_missed() -> None:
    window = [days_ago(1), TODAY]
    assert catch_up_days(TODAY, 2, 14, None) == (window, None)  # a folder seen the first time
    assert catch_up_days(TODAY, 2, 14, TODAY) == (window, None)
    assert catch_up_days(TODAY, 2, 14, days_ago(1)) == (window, None)


def test_every_day_since_the_last_listing_after_a_downtime() -> None:
    days, left_out = catch_up_days(TODAY, 2, 14, days_ago(5))
    assert days == [days_ago(n) for n in range(5, -1, -1)] and left_out is None


def test_at_most_max_catch_up_days_and_what_is_left_out() -> None:
    days, left_out = catch_up_days(TODAY, 2, 14, days_ago(20))
    assert days[0] == days_ago(13) and days[-1] == TODAY and len(days) == 14
    assert left_out == days_ago(20)


def test_a_key_names_its_account_and_region() -> None:
    key = "o-abcdefghij/AWSLogs/o-abcdefghij/111122223333/CloudTrail/eu-west-1/2026/12/02/x.gz"
    assert account_region_of(key) == ("111122223333", "eu-west-1")
    assert account_region_of("flat.json") == (None, None)

"""What a failed attempt makes of a file, the same for every backend."""

from __future__ import annotations

from umbrellabot.storage.file_failures import Attempt, after_failure


def test_bad_files_count_back_off_and_are_given_up_on() -> None:
    bad = Attempt("k", "e", "not gzip", counts=True, max_attempts=3, retry_base_s=10)
    first = after_failure(bad, 0, 0, now=100)
    assert (first.status, first.attempts, first.next_retry_at) == ("failed", 1, 110)
    second = after_failure(bad, first.attempts, 0, now=200)
    assert second.next_retry_at == 220  # twice as long
    last = after_failure(bad, second.attempts, 0, now=300)
    assert (last.status, last.next_retry_at) == ("abandoned", None)
    assert last.reason == "not gzip (after 3 attempts)"


def test_worker_deaths_count_apart_and_s3_trouble_not_at_all() -> None:
    died = Attempt("k", None, "worker killed", False, 5, 10, worker_died=True, max_deaths=2)
    once = after_failure(died, 4, 0, now=0)
    assert (once.status, once.attempts, once.deaths) == ("failed", 4, 1)
    twice = after_failure(died, 4, once.deaths, now=0)
    assert twice.status == "abandoned" and twice.reason == "worker killed, 2 times"
    slow = Attempt("k", None, "S3 timed out", counts=False, max_attempts=1, retry_base_s=10)
    kept = after_failure(slow, 0, 0, now=50)
    assert (kept.status, kept.attempts, kept.next_retry_at) == ("failed", 0, 50)

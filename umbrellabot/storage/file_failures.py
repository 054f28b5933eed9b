"""What one failed attempt makes of a file, whichever backend keeps it (pure): a failure of the
file itself counts towards MAX_FILE_ATTEMPTS, a worker's death towards its own limit, anything
else (S3 trouble) not at all; the retry waits exponentially; past a limit the file is given up
on, with a reason that says how often."""

from __future__ import annotations

from dataclasses import dataclass

from umbrellabot.storage.ports import FileState


@dataclass(frozen=True)
class Attempt:
    """One failed attempt at a file, as the ledger is told of it."""

    key: str
    etag: str | None
    reason: str
    counts: bool  # the file itself is bad
    max_attempts: int
    retry_base_s: float
    worker_died: bool = False
    max_deaths: int = 3


def after_failure(attempt: Attempt, attempts: int, deaths: int, now: float) -> FileState:
    """The file's state after `attempt`, from the attempts and deaths counted before it."""
    attempts += 1 if attempt.counts else 0
    deaths += 1 if attempt.worker_died else 0
    abandoned = (attempt.counts and attempts >= attempt.max_attempts) or (
        attempt.worker_died and deaths >= attempt.max_deaths
    )
    reason = attempt.reason
    if attempt.worker_died and abandoned:
        reason = f"{reason}, {deaths} times"
    elif attempt.counts and abandoned:
        reason = f"{reason} (after {attempts} attempts)"
    tries = attempts if attempt.counts else deaths if attempt.worker_died else 0
    delay = attempt.retry_base_s * 2 ** max(tries - 1, 0) if tries else 0.0
    return FileState(
        attempt.key,
        attempt.etag,
        "abandoned" if abandoned else "failed",
        attempts,
        reason,
        None if abandoned else now + delay,
        deaths,
    )

"""The wiring of the state: SQLite in STATE_DIR (the default), or the table shared by workers on
any number of hosts (STATE_BACKEND=dynamodb), opened with the default credentials and the
trail's region: the table is umbrellabot's own, not the log archive's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from umbrellabot.config import Settings
from umbrellabot.storage.ports import StateBackend
from umbrellabot.storage.sqlite import DATABASE_NAME, SqliteState

if TYPE_CHECKING:
    from umbrellabot.storage.dynamodb import DynamoState


def open_state(settings: Settings) -> StateBackend:
    if settings.state_backend == "dynamodb":
        return open_shared_state(settings)
    return SqliteState(settings.state_dir)


def existing_state(settings: Settings) -> StateBackend | None:
    """The state, when a daemon or a command has made one (`show` creates none)."""
    if settings.state_backend == "dynamodb" or (settings.state_dir / DATABASE_NAME).exists():
        return open_state(settings)
    return None


def shared_state(settings: Settings) -> DynamoState:
    """DYNAMODB_TABLE, unchecked (what `state setup` makes)."""
    from umbrellabot.app.wiring import aws_region
    from umbrellabot.storage.dynamodb import connect

    assert settings.dynamodb_table is not None
    return connect(
        settings.dynamodb_table,
        region=aws_region(settings),
        retention_days=settings.state_retention_days,
        index_all_events=settings.index_events == "all",
        max_attempts=settings.s3_max_attempts,
    )


def open_shared_state(settings: Settings) -> StateBackend:
    """DYNAMODB_TABLE, once it is there with umbrellabot's shape; StateError otherwise."""
    from umbrellabot.storage.dynamodb import StateError, check_table

    state = shared_state(settings)
    try:
        problem = check_table(state.table)
    except StateError:
        state.close()
        raise
    if problem is not None:
        state.close()
        raise StateError(problem)
    return state

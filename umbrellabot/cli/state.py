"""`umbrellabot state setup`: make the state the settings name, once, before the first worker
starts (several workers must not race to create one table)."""

from __future__ import annotations

import argparse

from umbrellabot.app.wiring_state import shared_state
from umbrellabot.cli.output import EXIT_CANNOT_RUN, EXIT_OK, error, stdout
from umbrellabot.config import load_settings
from umbrellabot.storage.dynamodb import StateError, setup_table
from umbrellabot.storage.sqlite import SqliteState


def cmd_state_setup(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.state_backend == "sqlite":
        sqlite = SqliteState(settings.state_dir)
        stdout.print(f"SQLite state ready in {sqlite.path} (STATE_BACKEND=sqlite)", soft_wrap=True)
        sqlite.close()
        return EXIT_OK
    state = shared_state(settings)
    try:
        result = setup_table(state.table)
    except StateError as err:
        error(str(err))
        return EXIT_CANNOT_RUN
    finally:
        state.close()
    made = "created" if result.created else "already there, with umbrellabot's shape"
    ttl = "turned on" if result.ttl_enabled else "on"
    stdout.print(
        f"DynamoDB table {state.table.name} {made}: on-demand capacity, indexes by_state,"
        f" by_message and by_time; TTL on `expires` {ttl} (STATE_RETENTION_DAYS"
        f" {settings.state_retention_days})",
        soft_wrap=True,
    )
    return EXIT_OK

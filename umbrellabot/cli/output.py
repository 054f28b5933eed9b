"""What every command prints through: the two consoles, one-line errors, exit codes."""

from __future__ import annotations

import sys

from rich.console import Console

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran but something in it failed (a file, a rule test, not found)
EXIT_USAGE = 2  # bad usage, settings, rules or detections
EXIT_CANNOT_RUN = 3  # AWS refused or cannot serve us: nothing was done

# Piped output gets room for a whole eventID per row instead of the 80 columns rich assumes.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One unwrapped line on stderr, whatever the terminal width."""
    print(f"umbrellabot: {message}", file=sys.stderr)

"""Error types whose message is one line for the user (the CLI prints it and exits 2)."""

from collections.abc import Sequence


class UsageError(Exception):
    """Bad usage: a missing source, a bad option value; str() is the whole message."""


class ProblemsError(Exception):
    """Problems found while loading a set (rules, detections): all of them, one line each,
    naming the file, the item and the key. Nothing runs with half a set."""

    label = "invalid"

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def first_line(message: str) -> str:
    """The first non-blank line of a library's (multi-line) error message."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def one_line(text: str) -> str:
    """All of a message on one line, its white space folded."""
    return " ".join(text.split())

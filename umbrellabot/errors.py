"""Error types whose message is one line for the user (the CLI prints it and exits 2)."""


class UsageError(Exception):
    """Bad usage: a missing source, a bad option value; str() is the whole message."""

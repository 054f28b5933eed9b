"""Logging: one line per event, plain or JSON (`LOG_FORMAT=json`), and never a secret.

Secrets are masked twice: the settings keep tokens in SecretStr (never formatted), and a filter
on the root handler rewrites anything shaped like a Slack token or an AWS secret that a library
might still print.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

_SECRETS = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]{6,}"  # Slack bot/user/app tokens
    r"|xapp-[A-Za-z0-9-]{6,}"
    r"|(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"  # AWS secret access keys
    r"|(?i:access_key=)[^&\s]+"  # ipstack's key in a URL
)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", ...extra fields, "exception"} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class SkippedTickFilter(logging.Filter):
    """A cycle still running at the next tick is normal under a backlog (the tick is skipped and
    coalesced), yet APScheduler warns about it at every tick: the line is DEBUG here, and shown
    only when the log level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances reached" not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure(level: int | str = logging.INFO, fmt: str = "text") -> None:
    """Replace the root handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("botocore", "aiobotocore", "urllib3", "slack_sdk", "slack_bolt", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, SkippedTickFilter) for f in scheduler.filters):
        scheduler.addFilter(SkippedTickFilter())

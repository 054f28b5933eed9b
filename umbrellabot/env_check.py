"""What pydantic-settings lets pass silently in an env file: a file that is not text, a line
that is not `KEY=VALUE`, a misspelled setting (`POLL_INTRVAL=30` is simply ignored), and the
placeholders of `.env.example` left unfilled. Each is one line for the user (SettingsError, exit
2); a near miss in the process environment, where compose's `env_file` puts the values, is one
warning line, since the environment also holds everything else on the machine.

The file is read with python-dotenv's own parser, the one pydantic-settings reads it with, so
what is refused here is exactly what would have been misread there.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from dotenv.parser import parse_stream
from pydantic import AliasChoices

log = logging.getLogger(__name__)

PREFIX = "UMBRELLABOT_"
# Keys of other programs that belong in the same file: botocore's, compose's, proxies, TZ.
_OTHERS = ("AWS_", "COMPOSE_", "DOCKER_")
_OTHER_KEYS = frozenset({"TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "LANG"})
_NEAR = 0.8  # difflib ratio: POLL_INTRVAL ~ POLL_INTERVAL (0.96), HOSTNAME !~ HEALTH_HOST
# `.env.example`'s placeholder values: a copy that was never filled in.
PLACEHOLDERS = {
    "CLOUDTRAIL_BUCKET_NAME": "my-cloudtrail-bucket",
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SLACK_APP_TOKEN": "xapp-your-app-level-token",
    "SLACK_CHANNEL": "C0123456789",
}


class EnvFileError(ValueError):
    """The env file cannot be used as it is; str() is one line naming the file and the key."""


def chosen_env_file(variable: str, default: str) -> Path | None:
    """The file `variable` names (it must exist), else `default` in the working directory when
    there is one."""
    named = os.environ.get(variable)
    if named:
        path = Path(named)
        if not path.is_file():
            raise EnvFileError(f"{variable}: no such env file: {path}")
        return path
    found = Path(default)
    return found if found.is_file() else None


def names_of(model: Any, *extra: str) -> frozenset[str]:
    """The variable names a pydantic-settings model reads (field names and their
    AliasChoices), upper case, and `extra`."""
    names = {name.upper() for name in extra}
    for name, field in model.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices}
    return frozenset(names)


def read_env_file(path: Path) -> dict[str, str | None]:
    """KEY -> value of every binding; raises EnvFileError for a binary file or a junk line."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise EnvFileError(
            f"{path} is not a text file (it holds NUL bytes): expected KEY=VALUE lines"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise EnvFileError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}):"
            " expected KEY=VALUE lines"
        ) from None
    values: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            shown = binding.original.string.strip()
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise EnvFileError(
                f"line {binding.original.line} of {path} is not KEY=VALUE: {shown!r}"
            )
        if binding.key is not None:
            values[binding.key] = binding.value
    return values


def _is_other_program(key: str) -> bool:
    upper = key.upper()
    return upper in _OTHER_KEYS or upper.startswith(_OTHERS) or upper.endswith("_PROXY")


def near_miss(key: str, names: Iterable[str]) -> str | None:
    """The setting a key was probably meant to be, if any."""
    found = difflib.get_close_matches(key.upper(), list(names), n=1, cutoff=_NEAR)
    return found[0] if found else None


def unknown_key_problem(
    key: str, names: frozenset[str], where: str, *, prefixed: bool = True
) -> str | None:
    """One line about a key that looks like a setting but is none (a near miss of one, or, with
    `prefixed`, any `UMBRELLABOT_` key); None when it is fine."""
    upper = key.upper()
    if upper in names or _is_other_program(upper):
        return None
    guess = near_miss(upper, names)
    if guess is None and not (prefixed and upper.startswith(PREFIX)):
        return None  # someone else's variable
    hint = f" — did you mean {guess}?" if guess else ""
    return f"unknown setting {upper} in {where}{hint}"


def check_env_file(path: Path, names: frozenset[str]) -> dict[str, str | None]:
    """The file's values, after refusing what would be misread or ignored."""
    try:
        values = read_env_file(path)
    except OSError as err:
        raise EnvFileError(f"cannot read {path}: {err.strerror or err}") from None
    for key in values:
        problem = unknown_key_problem(key, names, str(path))
        if problem is not None:
            raise EnvFileError(problem)
    return values


def warn_about_environment(names: frozenset[str], environ: Mapping[str, str] = os.environ) -> None:
    """One warning per near miss among the process's variables (not every UMBRELLABOT_ one: the
    environment is shared with everything else, tests and tools included)."""
    for key in sorted(environ):
        problem = unknown_key_problem(key, names, "the environment", prefixed=False)
        if problem is not None:
            log.warning("%s (ignored)", problem)


def placeholder_in(settings: Any, source_of: Callable[[str], str]) -> str | None:
    """A setting still holding `.env.example`'s placeholder, in one line naming where."""
    for key in PLACEHOLDERS:
        value = getattr(settings, key.lower())
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        problem = placeholder_problem({key: text}, source_of(key).removeprefix("from "))
        if problem is not None:
            return problem
    return None


def placeholder_problem(values: Mapping[str, object], source: str) -> str | None:
    """A value still holding `.env.example`'s placeholder."""
    for key, placeholder in PLACEHOLDERS.items():
        if str(values.get(key) or "") == placeholder:
            return f"fill in {key} in {source} (it still holds the example's {placeholder})"
    return None


def source_of(name: str, env_file: Path | None) -> str:
    """Where a setting's value came from, for the line that says it is wrong."""
    if any(key.upper() == name for key in os.environ):
        return "from the environment"
    if env_file is not None:
        return f"from {env_file}"
    return "default"


def describe_error(error: Any) -> str:
    """A pydantic error's message without pydantic's own prefix."""
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")

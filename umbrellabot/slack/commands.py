"""What a person asked the bot: the text of a mention (or a direct message) parsed into a
Command. Pure.

Slack delivers the text with its own markup: `<@U123>` mentions, `<mailto:a@b|a@b>` and
`<https://…|label>` wrappers around anything that looks like an address or a link, `<#C1|name>`
channels, and `&lt;` `&gt;` `&amp;` for the three characters it reserves. All of that is turned
back into what the person typed before the words are read. Nothing here validates an eventID: a
`check out` of something that is not one is still a CheckOut, carrying the raw text, so that the
reply can say clearly what was wrong (queries.valid_event_id decides; no SQL is ever built from
the raw text).

Grammar (case-insensitive, the bot's mention anywhere):
    help | ? | commands              -> Help
    status                           -> Status
    recent [alerts] [N]              -> Recent (N: 1..RECENT_MAX, default RECENT_DEFAULT)
    an eventID (a UUID) anywhere     -> CheckOut(that eventID)
    check out | checkout | show | look up | lookup  <text>  -> CheckOut(text)
    (nothing)                        -> Help
    anything else                    -> Unknown(text)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from umbrellabot.slack.text import INVISIBLE

RECENT_DEFAULT = 10
RECENT_MAX = 25
RAW_MAX = 200  # characters of what was typed kept on a command (it is only ever echoed)

_HEX = "[0-9a-fA-F]"
EVENT_ID_IN_TEXT = re.compile(
    rf"(?<![0-9A-Za-z-])({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})"
    r"(?![0-9A-Za-z-])"
)
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<!(?:here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]*)(?:\|([^>]*))?>")
_SPACE = re.compile(r"[\s\u00a0]+")
_CHECK_OUT = re.compile(
    r"^(?:check[\s-]*out|checkout|show|look[\s-]*up|lookup)\b[\s:]*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_RECENT = re.compile(r"^(?:recent|latest)(?:\s+alerts?)?(?:\s+(?P<n>\S+))?\s*$", re.IGNORECASE)
_HELP_WORDS = frozenset({"help", "?", "commands", "usage", "h"})


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Recent:
    limit: int = RECENT_DEFAULT
    note: str | None = None  # said in the reply when the N typed was not used as it was


@dataclass(frozen=True)
class CheckOut:
    """Look up one event. `event_id` is what was typed (unvalidated) or the UUID found in it."""

    event_id: str
    verb: str = "check out"


@dataclass(frozen=True)
class Mutes:
    """The active mutes."""


@dataclass(frozen=True)
class Unmute:
    mute_id: int | None  # None: what was typed is no mute id
    typed: str = ""


@dataclass(frozen=True)
class Acks:
    limit: int = RECENT_DEFAULT


@dataclass(frozen=True)
class Unknown:
    text: str


Command = Help | Status | Recent | CheckOut | Mutes | Unmute | Acks | Unknown


def plain_text(text: str) -> str:
    """The text as the person typed it: mentions removed, Slack's wrappers and entities undone,
    whitespace collapsed."""
    text = _USER_MENTION.sub(" ", text)
    text = _SPECIAL.sub(" ", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1) or 'channel'}", text)

    def unwrap(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if label:
            return label
        return target.split(":", 1)[1] if target.startswith(("mailto:", "tel:")) else target

    text = _LINK.sub(unwrap, text)
    # &amp; last, so that a typed "&amp;lt;" stays "&lt;"
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = INVISIBLE.sub("", text)
    return _SPACE.sub(" ", text).strip()


def _unquote(text: str) -> str:
    """Code formatting around a pasted value (`id`, ```id```) is not part of it."""
    stripped = text.strip()
    while len(stripped) >= 2 and stripped[0] == stripped[-1] == "`":
        stripped = stripped[1:-1].strip()
    return stripped


def _recent(argument: str | None) -> Recent:
    if argument is None:
        return Recent()
    default = f"the latest {RECENT_DEFAULT} are shown"
    try:
        wanted = int(argument)
    except ValueError:
        return Recent(note=f"“{argument[:40]}” is not a number; {default}")
    if wanted < 1:
        return Recent(note=f"{wanted} is not a number of alerts; {default}")
    if wanted > RECENT_MAX:
        return Recent(RECENT_MAX, note=f"at most {RECENT_MAX} are shown at once")
    return Recent(wanted)


def parse(text: str) -> Command:
    """The command in the text of a mention or a direct message."""
    plain = plain_text(text)
    if not plain:
        return Help()
    words = plain.split(" ")
    first = words[0].lower().rstrip(":,.!")
    if first in _HELP_WORDS:
        return Help()
    if first == "status":
        return Status()
    if first == "mutes" and len(words) == 1:
        return Mutes()
    if first == "unmute":
        typed = " ".join(words[1:])[:40]
        return Unmute(int(typed) if typed.isdigit() and len(typed) < 12 else None, typed)
    if first in ("acks", "acknowledged") and len(words) <= 2:
        limit = _recent(words[1] if len(words) == 2 else None).limit
        return Acks(limit)
    if recent := _RECENT.match(plain):
        return _recent(recent.group("n"))
    check = _CHECK_OUT.match(plain)
    if found := EVENT_ID_IN_TEXT.search(plain):
        verb = "show" if check and plain.lower().startswith("show") else "check out"
        return CheckOut(found.group(1), verb)
    if check:
        verb = "show" if plain.lower().startswith("show") else "check out"
        return CheckOut(_unquote(check.group("rest"))[:RAW_MAX], verb)
    return Unknown(plain[:RAW_MAX])

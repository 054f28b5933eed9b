"""Making untrusted text safe for Slack, and keeping messages within Slack's limits. Pure.

Everything that comes from a log is untrusted: a crafted userAgent or request parameter must not
mention @channel/@here/a user or render a link with a fake label. Slack's mrkdwn gives `<`, `>`
and `&` their meaning (`<!channel>`, `<@U123>`, `<https://x|label>`), so escaping those three
makes any text inert; control characters are replaced too, and zero-width ones taken out.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from umbrellabot.model.severity import Severity

SECTION_TEXT_MAX = 3000  # characters in a section's text
MESSAGE_TEXT_MAX = 40_000  # characters in a message's text
BLOCKS_MAX = 50  # blocks in a message
FALLBACK_TEXT_MAX = 3000  # the notification/fallback text we send
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Zero-width and invisible formatting characters: nothing to see, but `ad\u200bmin` reads as
# admin while matching nothing; they are taken out (a visible mark would split the word).
INVISIBLE = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff]")
ELLIPSIS = "…"
# One severity vocabulary for alerts, replies, the digest and the App Home.
SEVERITY_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.HIGH: ":red_circle:",
    Severity.MEDIUM: ":large_orange_circle:",
    Severity.LOW: ":large_yellow_circle:",
    Severity.INFO: ":information_source:",
}


class Message(NamedTuple):
    """What chat.postMessage / chat.update get: `text` (the fallback: notifications and
    clients without blocks) and `blocks`."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: object) -> str:
    """Log-derived text made inert for Slack mrkdwn and plain text."""
    value = _CONTROL.sub("�", INVISIBLE.sub("", str(text)))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, note: str = "") -> str:
    """At most `limit` characters, cut on a character boundary, saying it was cut."""
    if len(text) <= limit:
        return text
    marker = f"{ELLIPSIS}{note}"
    cut = text[: max(0, limit - len(marker))]
    # never leave half an escape sequence (&amp; &lt; &gt;) at the end
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + marker


def code_block(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    """Escaped text in a ``` block that, fences included, fits in a section."""
    inner = truncate(escape(text).replace("```", "`\u200b``"), limit - 8, " (truncated)")
    return f"```{inner}```"


def section(markdown: str) -> dict[str, Any]:
    """A mrkdwn section; `markdown` must already be escaped where it holds log text."""
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(markdown, SECTION_TEXT_MAX)},
    }


def fields_section(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Up to 10 `*label*\\nvalue` fields (values already escaped); each within 2,000 chars."""
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": truncate(f"*{label}*\n{value}", 2000)}
            for label, value in pairs[:10]
        ],
    }


def context(markdown: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(markdown, SECTION_TEXT_MAX)}],
    }


def fit_blocks(
    blocks: list[dict[str, Any]], note: str = "(more in the thread)"
) -> list[dict[str, Any]]:
    """At most 50 blocks; when cut, the last one says so."""
    if len(blocks) <= BLOCKS_MAX:
        return blocks
    return [
        *blocks[: BLOCKS_MAX - 1],
        context(f"{ELLIPSIS} {len(blocks) - BLOCKS_MAX + 1} more blocks not shown {note}"),
    ]


def fallback(text: str) -> str:
    """The plain-text fallback (notifications, clients without blocks): escaped and short."""
    return truncate(text, FALLBACK_TEXT_MAX)


def verbatim(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every mrkdwn text object marked `verbatim`: Slack adds no links or mentions itself."""

    def mark(item: Any) -> None:
        if isinstance(item, dict):
            if item.get("type") == "mrkdwn" and "text" in item:
                item["verbatim"] = True
            for value in item.values():
                mark(value)
        elif isinstance(item, list):
            for value in item:
                mark(value)

    mark(blocks)
    return blocks

"""Slack messages for alerts, roll-ups and cycle summaries: Block Kit with a plain-text fallback.
Pure: builds dictionaries, does no I/O.

Everything that comes from a log is untrusted and goes through `text.escape` (`&`, `<`,
`>`), so a crafted userAgent or request parameter stays text: no @channel/@here/user mention, no
link with a fake label. Every mrkdwn text object is also sent with `verbatim: true`, so Slack does
not auto-link URLs or channel names in it either. The only links in a message are the ones built
here: the event in the AWS console (fixed label, URL made of URL-encoded parts) and bare runbook
URLs of the rule (shown as themselves, never with a label).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from umbrellabot.model.accounts import NO_NAMES, AccountNames, account_label
from umbrellabot.model.alerts import Alert, console_url
from umbrellabot.model.facts import INSIGHT_TYPES, outcome_of
from umbrellabot.model.severity import Severity
from umbrellabot.slack.text import (
    BLOCKS_MAX,
    MESSAGE_TEXT_MAX,
    SECTION_TEXT_MAX,
    SEVERITY_EMOJI,
    Message,
    context,
    escape,
    fallback,
    fields_section,
    fit_blocks,
    section,
    truncate,
    verbatim,
)

CONSOLE_LABEL = "Open in the AWS console"
FIELD_VALUE_MAX = 500  # one who/what/where/when value
USER_AGENT_MAX = 1000
CONTEXT_VALUE_MAX = 300
RUNBOOK_MAX = 2500
REPLY_ALERTS_MAX = 100  # alerts listed in one roll-up thread reply
_REPLY_BLOCKS_MAX = BLOCKS_MAX - 5
_REPLY_CHARS_MAX = MESSAGE_TEXT_MAX - 4000  # room for the header, fallback and JSON keys
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_URL = re.compile(r"https?://(?:[^\s<>|&`]|&amp;)+")
_URL_TRAILING = ".,;:!?)]}'\""
RUNBOOK_LINKS_MAX = 50


class RollupReply(NamedTuple):
    """One roll-up thread reply and how many alerts (in order) it lists."""

    message: Message
    alerts: int


# pieces


def code(value: object, limit: int = FIELD_VALUE_MAX) -> str:
    """Log text as an inline code span: escaped, within `limit`, no backtick to break out."""
    inner = truncate(escape(value).replace("`", "'"), limit)
    return f"`{inner}`"


def plain(value: object, limit: int = FIELD_VALUE_MAX) -> str:
    return truncate(escape(value), limit)


def severity_label(severity: Severity) -> str:
    return f"{SEVERITY_EMOJI[severity]} *{severity.name}*"


def utc_time(event_time: str | None) -> str:
    """eventTime as `2026-11-29 10:00:00 UTC`; anything else shown as (escaped) text."""
    if not event_time:
        return "unknown"
    try:
        parsed = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return plain(event_time, 100)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_link(alert: Alert, label: str = CONSOLE_LABEL) -> str | None:
    """`<url|label>` to the event in the CloudTrail console, or None without a usable region
    and eventID. The label is ours; the URL is built from URL-encoded parts."""
    if not alert.region or not _REGION.match(alert.region):
        return None
    url = console_url(alert.event_id, alert.region)
    if url is None or not url.startswith("https://"):
        return None
    return f"<{escape(url)}|{label}>"


def runbook_text(runbook: str, limit: int = RUNBOOK_MAX) -> str:
    """The rule's runbook, escaped; bare http(s) URLs in it become links showing themselves."""
    escaped = truncate(escape(runbook.strip()), limit)
    links = 0

    def link(match: re.Match[str]) -> str:
        nonlocal links
        url = match.group(0).rstrip(_URL_TRAILING)
        rest = match.group(0)[len(url) :]
        links += 1
        if links > RUNBOOK_LINKS_MAX or len(url) < len("https://x"):
            return match.group(0)
        return f"<{url}>{rest}"

    return _URL.sub(link, escaped)


def _who(alert: Alert, names: AccountNames) -> str:
    parts = [code(alert.principal or "unknown")]
    if alert.identity_type:
        parts.append(plain(alert.identity_type, 100))
    if alert.account:
        parts.append(f"account {code(account_label(alert.account, names), 200)}")
    return "\n".join(parts)


def _outcome(alert: Alert) -> str:
    if alert.identity_type in INSIGHT_TYPES:  # an Insight: what CloudTrail saw of the API
        return outcome_of(
            alert.identity_type, code(alert.error_code, 200) if alert.error_code else None
        )
    return f"failed: {code(alert.error_code, 200)}" if alert.error_code else "succeeded"


def _what(alert: Alert) -> str:
    return f"{code(alert.action)}\n{_outcome(alert)}"


def _where(alert: Alert) -> str:
    region = code(alert.region, 100) if alert.region else "no region"
    address = code(alert.source_ip, 300) if alert.source_ip else "no source IP"
    country = plain(alert.country, 20) if alert.country else "country unknown"
    return f"{region}\n{address} ({country})"


def context_text(pairs: Sequence[tuple[str, str]]) -> str:
    """The rule's `context:` fields: labels (the rule's words) plain, values (the log's) code."""
    text = "*Context*"
    for index, (label, value) in enumerate(pairs):
        line = f"\n{plain(label, 100)}: {code(value, CONTEXT_VALUE_MAX)}"
        if len(text) + len(line) > SECTION_TEXT_MAX - 40:  # whole lines only: no broken span
            return f"{text}\n… {len(pairs) - index} more"
        text += line
    return text


def _rule_credit(alert: Alert) -> str:
    # the Detection Rule License 1.1 asks that a Sigma rule's author is named where it alerts
    kind = "Sigma rule" if alert.rule_kind == "sigma" else "Rule"
    credit = f"{kind} {code(alert.rule_id, 200)}"
    if alert.author:
        credit += f" by {plain(alert.author, 200)}"
    return credit


# messages


def alert_message(alert: Alert, names: AccountNames = NO_NAMES) -> Message:
    """One alert: severity, title, who/what/where/when, user agent, runbook, eventID, link."""
    title = plain(alert.rule_title, 1000)
    blocks: list[dict[str, Any]] = [
        section(f"{severity_label(alert.severity)}  *{title}*"),
        fields_section(
            [
                ("Who", _who(alert, names)),
                ("What", _what(alert)),
                ("Where", _where(alert)),
                ("When", utc_time(alert.event_time)),
            ]
        ),
    ]
    if alert.context:
        blocks.append(section(context_text(alert.context)))
    if alert.user_agent:
        blocks.append(section(f"*User agent*\n{code(alert.user_agent, USER_AGENT_MAX)}"))
    if alert.runbook.strip():
        blocks.append(section(f"*Runbook*\n{runbook_text(alert.runbook)}"))
    details = [f"eventID {code(alert.event_id or 'none', 200)}"]
    link = console_link(alert)
    if link:
        details.append(link)
    details.append(_rule_credit(alert))
    if alert.source_file:
        details.append(f"from {code(alert.source_file, 300)}")
    blocks.append(context(" · ".join(details)))
    text = (
        f"{SEVERITY_EMOJI[alert.severity]} {alert.severity.name}: {plain(alert.rule_title, 300)}"
        f" — {plain(alert.principal or 'unknown', 300)} {plain(alert.action, 200)}"
        f" ({_outcome(alert)}) in {plain(alert.region or 'no region', 50)},"
        f" eventID {plain(alert.event_id or 'none', 100)}"
    )
    return Message(fallback(text), verbatim(fit_blocks(blocks)))


def rollup_message(
    sample: Alert,
    *,
    total: int,
    individual: int,
    first_event_time: str | None,
    last_event_time: str | None,
    window_minutes: int,
) -> Message:
    """The parent of a roll-up: `total` alerts of one rule and principal in one window, the
    first `individual` posted on their own, the rest in this message's thread."""
    rolled = max(total - individual, 0)
    principal = code(sample.principal or "unknown")
    headline = (
        f"{severity_label(sample.severity)}  *{plain(sample.rule_title, 1000)}*"
        f" — *{total}* alerts for {principal} within {window_minutes} minutes"
    )
    explain = (
        f"The first {individual} were posted on their own; the other {rolled} are listed"
        " in this thread. This count is kept up to date."
    )
    blocks = [
        section(headline),
        section(explain),
        fields_section(
            [
                ("Rule", _rule_credit(sample)),
                ("Principal", principal),
                ("First event", utc_time(first_event_time)),
                ("Last event", utc_time(last_event_time)),
            ]
        ),
    ]
    text = (
        f"{SEVERITY_EMOJI[sample.severity]} {sample.severity.name}: {total} alerts of"
        f" {plain(sample.rule_title, 300)} for {plain(sample.principal or 'unknown', 300)}"
        f" within {window_minutes} minutes"
    )
    return Message(fallback(text), verbatim(fit_blocks(blocks)))


def rollup_line(alert: Alert) -> str:
    """One rolled-up alert as one line of a thread reply."""
    parts = [
        code(utc_time(alert.event_time).removesuffix(" UTC"), 40),
        code(alert.action, 200),
        "ok" if not alert.error_code else f"failed {code(alert.error_code, 100)}",
        code(alert.region or "no region", 40),
        f"{code(alert.source_ip or 'no IP', 100)} {plain(alert.country or '?', 10)}",
        f"eventID {code(alert.event_id or 'none', 100)}",
    ]
    link = console_link(alert, "console")
    if link:
        parts.append(link)
    return "• " + " · ".join(parts)


def rollup_replies(alerts: Sequence[Alert], first_number: int = 1) -> list[RollupReply]:
    """Thread replies listing `alerts`, numbered from `first_number`: as few messages as
    Slack's limits allow (3,000 characters a section, 50 blocks, 40,000 characters)."""
    replies: list[RollupReply] = []
    number = first_number
    pending = list(alerts)
    while pending:
        taken: list[Alert] = []
        sections: list[str] = []
        lines: list[str] = []
        size = 0
        for alert in pending[:REPLY_ALERTS_MAX]:
            line = rollup_line(alert)
            current = sum(len(x) + 1 for x in lines)
            if lines and current + len(line) + 1 > SECTION_TEXT_MAX:
                if len(sections) + 1 >= _REPLY_BLOCKS_MAX:
                    break
                sections.append("\n".join(lines))
                lines = []
            if size + len(line) + 1 > _REPLY_CHARS_MAX:
                break
            lines.append(line)
            size += len(line) + 1
            taken.append(alert)
        if lines:
            sections.append("\n".join(lines))
        last = number + len(taken) - 1
        heading = f"Alerts {number}–{last} of this roll-up"
        blocks = [context(heading), *(section(text) for text in sections)]
        replies.append(RollupReply(Message(heading, verbatim(fit_blocks(blocks))), len(taken)))
        pending = pending[len(taken) :]
        number = last + 1
    return replies


def cycle_summary_message(
    *,
    files: int,
    records: int = 0,
    alerts: int = 0,
    failed: int = 0,
    by_severity: Mapping[Severity, int] | None = None,
) -> Message:
    """The optional short summary after a cycle ("Processed N log files")."""
    line = f"Processed {files} log file{'s' if files != 1 else ''}"
    if records:
        line += f" ({records:,} records)"
    line += f": {alerts} new alert{'s' if alerts != 1 else ''}"
    counts = [
        f"{count} {severity.label}"
        for severity, count in sorted((by_severity or {}).items(), reverse=True)
        if count
    ]
    if counts:
        line += f" ({', '.join(counts)})"
    if failed:
        line += f"; {failed} file{'s' if failed != 1 else ''} failed"
    line += "."
    return Message(fallback(line), verbatim([context(f":white_check_mark: {line}")]))


def follow_up_message(alert: Alert) -> Message:
    """One line in the thread of an earlier alert (files resume after a silence)."""
    line = f"{plain(alert.rule_title)}. {plain(alert.runbook)}"
    return Message(fallback(line), verbatim([context(f":large_green_circle: {line}")]))


def message_size(message: Message) -> int:
    """Characters Slack counts for a message: the fallback plus every text in its blocks."""
    return len(message.text) + sum(len(text) for text in _texts(message.blocks))


def _texts(item: Any) -> Iterable[str]:
    if isinstance(item, dict):
        for key, value in item.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _texts(value)
    elif isinstance(item, list):
        for value in item:
            yield from _texts(value)

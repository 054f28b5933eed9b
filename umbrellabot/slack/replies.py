"""What the bot says: Block Kit blocks and the plain fallback text of every reply. Pure.

Everything that comes from a log (and what people type, which is echoed back) goes through
text.escape, so it can neither mention anyone nor render a link with a fake label; every
block respects Slack's limits (3,000 characters a section, 2,000 a field, 50 blocks a message).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from umbrellabot.model.severity import Severity
from umbrellabot.slack import commands
from umbrellabot.slack.text import (
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
)

FIELD_VALUE_MAX = 300
EXAMPLE_EVENT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


def inline(value: object, limit: int = 120) -> str:
    """Escaped text in `inline code` (a backtick in it cannot end the code early)."""
    text = escape(value).replace("`", "ˋ")
    return f"`{truncate(text, limit) or ' '}`"


def plain_value(value: object, limit: int = FIELD_VALUE_MAX) -> str:
    return truncate(escape(value), limit) if value not in (None, "") else "–"


def severity_heading(severity: Severity | None) -> str:
    if severity is None:
        return ":white_circle: *not flagged*"
    return f"{SEVERITY_EMOJI[severity]} *{severity.name}*"


def _simple(text: str, markdown: str) -> Message:
    return Message(fallback(text), [section(markdown)])


# The event lookup


def looking_up(event_id: str) -> Message:
    return _simple(f"Looking up {escape(event_id)}…", f":mag: Looking up {inline(event_id)}…")


def invalid_event_id(typed: str, verb: str = "check out") -> Message:
    if not typed.strip():
        return _simple(
            f"{verb} needs an eventID",
            f":warning: `{verb}` needs an eventID, such as `{verb} {EXAMPLE_EVENT_ID}`.",
        )
    return _simple(
        f"{escape(typed[:80])} is not a CloudTrail eventID",
        f":warning: {inline(typed)} is not a CloudTrail eventID, so nothing was looked up. An"
        f" eventID is a UUID such as `{EXAMPLE_EVENT_ID}`.",
    )


def not_found(event_id: str, days: int) -> Message:
    return _simple(
        f"No event {escape(event_id)} found",
        f":grey_question: I found no event {inline(event_id)}: it is not in the event index, and"
        f" the enriched history of the last {days} days has no such eventID. CloudTrail delivers"
        " an event about 5 to 15 minutes after the call; a very recent one may not be processed"
        " yet.",
    )


def query_failed(event_id: str, reason: str) -> Message:
    return _simple(
        f"The lookup of {escape(event_id)} failed: the query failed",
        f":x: The lookup of {inline(event_id)} failed: the query failed:"
        f" {truncate(escape(reason), 1500)}\nTry again later; if it keeps failing, the bot's"
        " logs have the details.",
    )


def something_went_wrong(reference: str) -> Message:
    return _simple(
        "Something went wrong while answering",
        f":x: Something went wrong while answering (reference {inline(reference)}); the details"
        " are in the bot's logs.",
    )


# Help, status, recent, refusals


def help_reply(bot_name: str = "umbrellabot", intro: str | None = None) -> Message:
    me = f"@{escape(bot_name)}"
    lines = [
        f"*What I can do* (mention me: `{me} <command>`)",
        "• `check out <eventID>`: everything about one CloudTrail event: the alert fields, each"
        " rule that matched and which of its conditions held, requestParameters and"
        " responseElements, and the full record. `show <eventID>` works too, and so does an"
        " eventID anywhere in the message.",
        f"• `recent [N]`: the latest N alerts (default {commands.RECENT_DEFAULT}, at most"
        f" {commands.RECENT_MAX}).",
        "• `status`: the last ingest cycle (time, files, records, alerts, failures, backlog),"
        " the rules loaded and my version.",
        "• `mutes`: the active mutes (set from the Mute menu on an alert); `unmute <id>` ends"
        " one. `acks [N]`: the latest acknowledged alerts.",
        "• `help`: this list.",
    ]
    blocks = [section(intro)] if intro else []
    blocks.append(section("\n".join(lines)))
    text = (
        "Commands: check out <eventID>, show <eventID>, recent [N], status, mutes,"
        " unmute <id>, acks [N], help"
    )
    return Message(fallback(f"{intro}\n{text}" if intro else text), blocks)


def unknown_command(typed: str, bot_name: str = "umbrellabot") -> Message:
    return help_reply(bot_name, f":thinking_face: I don't know {inline(typed, 200)}.")


def not_allowed(reason: str) -> Message:
    """`reason`: "user", "channel" or "external". Says nothing about any event."""
    if reason == "external":
        markdown = (
            ":no_entry: Sorry, I only answer people of the workspace I am installed in."
            " Ask the people who run me if you need access."
        )
    elif reason in ("guest", "usergroup", "unverified"):
        why = {
            "guest": "I do not answer guests (ALLOW_GUESTS)",
            "usergroup": "I only answer the members of my user groups (ALLOWED_USERGROUPS)",
            "unverified": "Slack could not tell me who you are just now; try again shortly",
        }[reason]
        markdown = f":no_entry: Sorry, {why}. Ask the people who run me if you need access."
    elif reason == "channel":
        markdown = (
            ":no_entry: Sorry, I only answer in the channels I am set up for (ALLOWED_CHANNELS)."
            " Ask me there, or ask the people who run me to add this channel."
        )
    else:
        markdown = (
            ":no_entry: Sorry, I only answer the people I am set up for (ALLOWED_USERS). Ask the"
            " people who run me if you need access."
        )
    return _simple("Sorry, I cannot answer that here", markdown)


@dataclass(frozen=True)
class StatusInfo:
    version: str
    rules_loaded: int
    rules_enabled: int
    last_cycle: Mapping[str, Any] | None = None
    outbox_depth: int | None = None
    abandoned: Sequence[tuple[str, str]] = ()  # (key, reason) of the files given up on
    extra: Sequence[tuple[str, str]] = ()  # (label, value) the daemon adds (engine, schedule…)
    now: float = field(default_factory=time.time)


def _moment(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "–"
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    ago = max(0.0, now - epoch)
    if ago < 90:
        relative = f"{ago:.0f} s ago"
    elif ago < 5400:
        relative = f"{ago / 60:.0f} min ago"
    elif ago < 172_800:
        relative = f"{ago / 3600:.1f} h ago"
    else:
        relative = f"{ago / 86400:.0f} days ago"
    return f"{stamp} ({relative})"


def _count(cycle: Mapping[str, Any], name: str) -> str:
    value = cycle.get(name)
    return f"{value:,}" if isinstance(value, int) else "–"


def status_reply(info: StatusInfo) -> Message:
    cycle = info.last_cycle
    blocks: list[dict[str, Any]] = []
    if cycle is None:
        blocks.append(section("*Last ingest cycle:* none yet"))
        summary = "no ingest cycle yet"
    else:
        started = cycle.get("started_at")
        finished = cycle.get("finished_at")
        started_at = float(started) if isinstance(started, int | float) else None
        finished_at = float(finished) if isinstance(finished, int | float) else None
        if finished_at is None:
            state = f"running since {_moment(started_at, info.now)}"
        elif cycle.get("error"):
            state = f"failed {_moment(finished_at, info.now)}"
        else:
            state = f"finished {_moment(finished_at, info.now)}"
        blocks.append(section(f"*Last ingest cycle:* {state}"))
        pairs = [
            ("Files", _count(cycle, "files")),
            ("Records", _count(cycle, "records")),
            ("Alerts", _count(cycle, "alerts")),
            ("Failures", _count(cycle, "failures")),
            ("Backlog (files)", _count(cycle, "backlog")),
        ]
        if started_at is not None and finished_at is not None:
            pairs.append(("Took", f"{finished_at - started_at:.1f} s"))
        blocks.append(fields_section(pairs))
        if cycle.get("error"):
            blocks.append(section(f"*Error:* {truncate(escape(cycle['error']), 1500)}"))
        summary = (
            f"last cycle {state}: {_count(cycle, 'files')} files,"
            f" {_count(cycle, 'records')} records, {_count(cycle, 'alerts')} alerts,"
            f" {_count(cycle, 'failures')} failures, backlog {_count(cycle, 'backlog')}"
        )
    general = [
        ("Rules loaded", f"{info.rules_loaded} ({info.rules_enabled} enabled)"),
        ("Version", escape(info.version)),
    ]
    if info.outbox_depth is not None:
        general.insert(1, ("Alerts waiting for delivery", f"{info.outbox_depth:,}"))
    general.extend((escape(label), escape(value)) for label, value in info.extra[:7])
    blocks.append(fields_section(general))
    if info.abandoned:
        blocks.append(section(_abandoned_text(info.abandoned)))
        summary += f"; {len(info.abandoned)} files given up on"
    text = f"umbrellabot {info.version}: {summary}; {info.rules_loaded} rules loaded"
    return Message(fallback(escape(text)), blocks)


ABANDONED_SHOWN = 10


def _abandoned_text(abandoned: Sequence[tuple[str, str]]) -> str:
    lines = [
        f":warning: *Given up on {len(abandoned):,} log file{'s' if len(abandoned) != 1 else ''}*"
        " (their events are not enriched or alerted on; `umbrellabot retry KEY` or `--all`"
        " when the cause is fixed):"
    ]
    lines += [
        f"• {inline(key, 300)}: {truncate(escape(reason), 300)}"
        for key, reason in abandoned[:ABANDONED_SHOWN]
    ]
    if len(abandoned) > ABANDONED_SHOWN:
        lines.append(f"… and {len(abandoned) - ABANDONED_SHOWN:,} more")
    return truncate("\n".join(lines), SECTION_TEXT_MAX)


@dataclass(frozen=True)
class RecentItem:
    """One flagged event in the `recent` list (from the outbox or a query)."""

    event_id: str | None
    event_time: str | None
    severity: Severity | None
    action: str
    principal: str | None
    source_ip: str | None
    country: str | None
    rules: tuple[str, ...]
    error_code: str | None = None


def _recent_line(item: RecentItem) -> str:
    emoji = SEVERITY_EMOJI[item.severity] if item.severity else ":white_circle:"
    severity = item.severity.name if item.severity else "?"
    where = plain_value(item.source_ip, 60)
    if item.country:
        where += f" ({escape(item.country)})"
    rules = ", ".join(escape(rule) for rule in item.rules[:5]) or "–"
    if len(item.rules) > 5:
        rules += f" +{len(item.rules) - 5}"
    failed = f" ⚠️ {plain_value(item.error_code, 60)}" if item.error_code else ""
    return (
        f"{emoji} *{severity}* {inline(item.event_time or '?', 30)} {inline(item.action, 80)}"
        f" by {plain_value(item.principal, 120)} from {where}{failed}: {rules}"
        f" · eventID {inline(item.event_id or '?', 60)}"
    )


def _sections_of_lines(lines: Sequence[str], limit: int = SECTION_TEXT_MAX - 100) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def recent_reply(
    items: Sequence[RecentItem], limit: int, *, source: str, note: str | None = None
) -> Message:
    shown = list(items[:limit])
    heading = (
        f"*The latest {len(shown)} alert{'s' if len(shown) != 1 else ''}* (newest first)"
        if shown
        else "*No alerts yet.*"
    )
    blocks: list[dict[str, Any]] = [section(heading)]
    blocks.extend(section(chunk) for chunk in _sections_of_lines([_recent_line(i) for i in shown]))
    notes = [f"from {escape(source)}"]
    if note:
        notes.append(escape(note))
    if shown:
        notes.append("`check out <eventID>` tells the whole story of one")
    blocks.append(context(" · ".join(notes)))
    text = f"The latest {len(shown)} alerts" if shown else "No alerts yet"
    lines = [
        f"{item.severity.name if item.severity else '?'} {item.action}"
        f" {item.event_id or ''}".strip()
        for item in shown[:10]
    ]
    return Message(fallback(escape("\n".join([text, *lines]))), fit_blocks(blocks))


def recent_unavailable() -> Message:
    return _simple(
        "Recent alerts are not available",
        ":information_source: The list of recent alerts is not available here (neither the alert"
        " history nor a query engine is set up).",
    )


def fetching_recent(limit: int) -> Message:
    text = f"Fetching the latest {limit} alerts…"
    return _simple(text, f":hourglass_flowing_sand: {text}")

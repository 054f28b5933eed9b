"""The App Home tab: what an on-call person checks first. Open alerts by severity (told, not
acknowledged, not muted), the active mutes, the last ingest cycle and how far behind the newest
delivered log file it is, and the state of S3, Athena and Slack. Pure: builds the view that
`views.publish` gets; the bot gathers the state (bot.py) when someone opens the tab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import Mute
from umbrellabot.slack.alert_messages import code, plain
from umbrellabot.slack.replies import StatusInfo, status_reply
from umbrellabot.slack.text import BLOCKS_MAX, SEVERITY_EMOJI, context, section, verbatim
from umbrellabot.slack.triage_messages import mute_line, when
from umbrellabot.storage.ports import PendingAlert

OPEN_DAYS = 7  # open alerts are those of the last week
OPEN_SHOWN = 10


@dataclass(frozen=True)
class HomeState:
    open_counts: Mapping[Severity, int]
    open_alerts: Sequence[PendingAlert]
    mutes: Sequence[Mute]
    status: StatusInfo
    newest_log_at: float | None  # LastModified of the newest log file delivered
    now: float


def _open_lines(state: HomeState) -> list[dict[str, Any]]:
    total = sum(state.open_counts.values())
    if not total:
        return [section(f"*Open alerts* (last {OPEN_DAYS} days): none :white_check_mark:")]
    counts = "  ".join(
        f"{SEVERITY_EMOJI[s]} {state.open_counts[s]} {s.label}"
        for s in reversed(Severity)
        if state.open_counts.get(s)
    )
    lines = [
        f"{SEVERITY_EMOJI[item.alert.severity]} {plain(item.alert.rule_title, 150)}:"
        f" {code(item.alert.principal or 'unknown', 120)} {code(item.alert.action, 80)}"
        f" ({item.alert.event_time or '?'})"
        for item in state.open_alerts[:OPEN_SHOWN]
    ]
    more = total - len(lines)
    text = f"*Open alerts* (last {OPEN_DAYS} days, not acknowledged): {counts}\n" + "\n".join(lines)
    blocks = [section(text)]
    if more > 0:
        blocks.append(context(f"… and {more} more: `recent` and the alert channel have them"))
    return blocks


def _mute_lines(mutes: Sequence[Mute]) -> list[dict[str, Any]]:
    if not mutes:
        return [section("*Active mutes:* none: every alert is posted")]
    lines = [mute_line(mute) for mute in mutes[:15]]
    return [section(f"*Active mutes ({len(mutes)})*\n" + "\n".join(lines))]


def _lag(state: HomeState) -> str:
    if state.newest_log_at is None:
        return "no log file seen yet"
    minutes = max(state.now - state.newest_log_at, 0) / 60
    return f"the newest log file was delivered {minutes:.0f} min ago ({when(state.newest_log_at)})"


def home_view(state: HomeState) -> dict[str, Any]:
    status = status_reply(state.status)
    cycle = state.status.last_cycle or {}
    error = str(cycle.get("error") or "")
    services = [
        ("S3", "refused or unreachable at the last cycle" if "S3" in error else "ok"),
        ("Athena", "failed at the last cycle" if "Athena" in error else "ok"),
        ("Slack", "connected"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "umbrellabot"}},
        *_open_lines(state),
        {"type": "divider"},
        *_mute_lines(state.mutes),
        {"type": "divider"},
        *status.blocks,
        context(f"Lag: {_lag(state)}"),
        context(" · ".join(f"*{name}*: {value}" for name, value in services)),
    ]
    return {"type": "home", "blocks": verbatim(blocks[:BLOCKS_MAX])}

"""The triage part of an alert message: the Acknowledge button, the Mute menu (1 h, 24 h, 7 d)
and the Details button, then, once someone acted, who acknowledged it or muted what until when.
Pure. The message is a function of the stored alert and its triage state, so the bot rebuilds
it for `chat.update` instead of editing what Slack sent back.

Button values carry the outbox id of the alert (`<id>` or `<id>:<duration>`), never log text; a
user is shown as a mention made from the ID Slack gave (`<@U…>`, checked), never from a log."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from umbrellabot.model.accounts import NO_NAMES, AccountNames
from umbrellabot.model.alerts import Alert
from umbrellabot.model.triage import MUTE_DURATIONS, Ack, Mute
from umbrellabot.slack.alert_messages import alert_message, code, rollup_message
from umbrellabot.slack.rollup import RollupShape
from umbrellabot.slack.text import Message, context, verbatim
from umbrellabot.storage.ports import RollupWindow

ACK_ACTION = "umbrellabot_ack"
MUTE_ACTION = "umbrellabot_mute"
DETAILS_ACTION = "umbrellabot_details"
ACTIONS = (ACK_ACTION, MUTE_ACTION, DETAILS_ACTION)
TRIAGE_BLOCK = "umbrellabot_triage"
ROLLUP_BLOCK = "umbrellabot_rollup"  # the buttons of a roll-up parent: they act on its thread
_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_MUTE_LABELS = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days"}


def user_mention(user: str) -> str:
    """`<@U…>` for a real user ID; anything else (never expected) as inert code."""
    return f"<@{user}>" if _USER.match(user) else code(user, 40)


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def actions_block(
    alert_id: int, *, acknowledged: bool, details: bool = True, block_id: str = TRIAGE_BLOCK
) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    if not acknowledged:
        elements.append(
            {
                "type": "button",
                "action_id": ACK_ACTION,
                "text": _plain("Acknowledge"),
                "style": "primary",
                "value": str(alert_id),
            }
        )
    elements.append(
        {
            "type": "static_select",
            "action_id": MUTE_ACTION,
            "placeholder": _plain("Mute…"),
            "options": [
                {"text": _plain(f"Mute {label}"), "value": f"{alert_id}:{duration}"}
                for duration, label in _MUTE_LABELS.items()
                if duration in MUTE_DURATIONS
            ],
        }
    )
    if details:
        elements.append(
            {
                "type": "button",
                "action_id": DETAILS_ACTION,
                "text": _plain("Details"),
                "value": str(alert_id),
            }
        )
    return {"type": "actions", "block_id": block_id, "elements": elements}


def ack_line(ack: Ack) -> str:
    return f":white_check_mark: Acknowledged by {user_mention(ack.user)} at {when(ack.at)}"


def mute_line(mute: Mute) -> str:
    key = mute.key
    what = f"{code(key.rule_id, 200)}"
    if key.principal:
        what += f" for {code(key.principal, 300)}"
    if key.account:
        what += f" in account {code(key.account, 40)}"
    return (
        f":no_bell: Muted by {user_mention(mute.by)} until {when(mute.until)}: {what}"
        f" (mute {mute.id}; `unmute {mute.id}` ends it)"
    )


def triaged_alert_message(
    alert: Alert,
    alert_id: int,
    ack: Ack | None = None,
    mute: Mute | None = None,
    names: AccountNames = NO_NAMES,
) -> Message:
    """The alert's message with its buttons and what was done about it."""
    message = alert_message(alert, names)
    blocks = list(message.blocks)
    footer = blocks.pop() if blocks and blocks[-1].get("type") == "context" else None
    if ack is not None:
        blocks.append(context(ack_line(ack)))
    if mute is not None:
        blocks.append(context(mute_line(mute)))
    blocks.append(actions_block(alert_id, acknowledged=ack is not None))
    if footer is not None:
        blocks.append(footer)
    return Message(message.text, verbatim(blocks))


def thread_ack_line(window: RollupWindow, in_thread: int) -> str | None:
    if window.acked_by is None or window.acked_at is None:
        return None
    line = (
        f":white_check_mark: Acknowledged by {user_mention(window.acked_by)} at"
        f" {when(window.acked_at)}: the {window.acked} alerts in this thread then"
    )
    if in_thread > window.acked:
        line += f"; {in_thread - window.acked} came since (Acknowledge again for them)"
    return line


def rollup_parent_message(
    window: RollupWindow,
    sample: Alert,
    sample_id: int,
    shape: RollupShape,
    mute: Mute | None = None,
) -> Message:
    """The roll-up parent with its buttons: Acknowledge acknowledges every alert in its thread
    (`sample_id` is one of them, the outbox id the buttons carry), Mute mutes the sample's rule
    and principal. No Details: the thread lists the events."""
    message = rollup_message(
        sample,
        total=window.alerts,
        individual=shape.individual(window),
        first_event_time=window.first_event_time,
        last_event_time=window.last_event_time,
        window_minutes=shape.window_minutes,
    )
    blocks = list(message.blocks)
    in_thread = shape.in_thread(window)
    ack = thread_ack_line(window, in_thread)
    if ack is not None:
        blocks.append(context(ack))
    if mute is not None:
        blocks.append(context(mute_line(mute)))
    acknowledged = ack is not None and window.acked >= in_thread
    blocks.append(
        actions_block(sample_id, acknowledged=acknowledged, details=False, block_id=ROLLUP_BLOCK)
    )
    return Message(message.text, verbatim(blocks))


def parse_value(value: str) -> tuple[int, str | None] | None:
    """(alert id, mute duration) of a button or option value; None for anything else."""
    match = re.fullmatch(r"(\d{1,18})(?::(1h|24h|7d))?", value or "")
    if match is None:
        return None
    return int(match.group(1)), match.group(2)

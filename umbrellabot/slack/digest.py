"""The daily digest: the matches below ALERT_MIN_SEVERITY of one day, counted by rule, account
and principal, so the quiet ones are seen without the noise, and the active mutes, so a muted
rule cannot hide quietly. Pure: builds the message."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from umbrellabot.model.accounts import NO_NAMES, AccountNames, account_label
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import Mute, QuietKey
from umbrellabot.slack.alert_messages import code
from umbrellabot.slack.text import SEVERITY_EMOJI, Message, context, fallback, section, verbatim
from umbrellabot.slack.triage_messages import mute_line

TOP = 10


def _top(counts: Counter[str], label: str, shown: int = TOP) -> str:
    lines = [f"{n:,} {name}" for name, n in counts.most_common(shown)]
    more = len(counts) - len(lines)
    tail = f"\n… and {more} more" if more > 0 else ""
    return f"*By {label}*\n" + "\n".join(lines) + tail


def digest_message(
    day: str,
    counts: Sequence[tuple[QuietKey, int]],
    mutes: Sequence[Mute],
    *,
    min_severity: Severity,
    alert_min_severity: Severity,
    names: AccountNames = NO_NAMES,
) -> Message:
    total = sum(n for _, n in counts)
    heading = (
        f":newspaper: *Daily digest for {day}*: {total:,} rule matches from"
        f" {min_severity.label} up to below {alert_min_severity.label} (not alerted one by one)"
    )
    blocks = [section(heading)]
    if counts:
        by_rule: Counter[str] = Counter()
        by_account: Counter[str] = Counter()
        by_principal: Counter[str] = Counter()
        for key, n in counts:
            emoji = SEVERITY_EMOJI[Severity(key.severity)]
            by_rule[f"{emoji} {code(key.rule_id, 120)}"] += n
            by_account[code(account_label(key.account, names) or "no account", 120)] += n
            by_principal[code(key.principal or "unknown", 200)] += n
        blocks += [
            section(_top(by_rule, "rule")),
            section(_top(by_account, "account")),
            section(_top(by_principal, "principal")),
        ]
    else:
        blocks.append(context("No quiet matches that day."))
    if mutes:
        lines = "\n".join(mute_line(mute) for mute in mutes[:20])
        blocks.append(section(f"*Active mutes ({len(mutes)})*\n{lines}"))
    text = f"Daily digest for {day}: {total} quiet rule matches, {len(mutes)} active mutes"
    return Message(fallback(text), verbatim(blocks))

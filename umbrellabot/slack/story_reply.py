"""The reply to `check out <eventID>`: the whole story of one event in Block Kit. Pure.

Everything from the record goes through `text.escape`; every block respects Slack's limits, and
a record too long to show inline is said to follow as a file (`<eventID>.json`).
"""

from __future__ import annotations

from typing import Any

from umbrellabot.model.accounts import NO_NAMES, AccountNames, account_label
from umbrellabot.query.story import EventStory, Finding, original_record, pretty_json
from umbrellabot.slack.alert_messages import context_text
from umbrellabot.slack.replies import inline, severity_heading
from umbrellabot.slack.text import (
    SECTION_TEXT_MAX,
    Message,
    code_block,
    context,
    escape,
    fallback,
    fields_section,
    fit_blocks,
    section,
    truncate,
)

INLINE_RECORD_MAX = 2500  # a longer record goes as a file (<eventID>.json) into the thread
PARAMETERS_MAX = 2500  # characters of requestParameters / responseElements shown inline
RUNBOOK_MAX = 1500


def record_json(story: EventStory) -> str:
    """The record as CloudTrail wrote it, pretty: what is shown inline or uploaded."""
    return pretty_json(original_record(story.record))


def needs_upload(record_text: str) -> bool:
    return len(record_text) > INLINE_RECORD_MAX


def log_value(value: object, limit: int) -> str:
    """A value from the log, in a code span; a dash when there is none."""
    return inline(value, limit) if value not in (None, "") else "–"


def upload_filename(story: EventStory) -> str:
    return f"{story.event_id or 'event'}.json"


def _explanation_text(finding: Finding) -> str:
    lines = finding.match.lines(0)
    if finding.unless is not None:
        lines += ["unless (must not hold):", *finding.unless.lines(1)]
    return "\n".join(lines)


def _finding_blocks(finding: Finding) -> list[dict[str, Any]]:
    rule = finding.rule
    heading = f"{severity_heading(rule.severity)} · {inline(rule.id, 100)} {escape(rule.title)}"
    if rule.author:
        sigma = "Sigma rule " if rule.kind == "sigma" else ""
        heading += f" _({sigma}by {escape(rule.author)})_"
    if not finding.at_enrichment:
        heading += "\n_matches now; it did not when the event was enriched (the rules changed)_"
    blocks = [section(heading)]
    if finding.context:
        blocks.append(section(context_text(finding.context)))
    blocks.append(section(code_block(_explanation_text(finding), 2000)))
    if rule.runbook.strip():
        blocks.append(context(f"*Runbook:* {truncate(escape(rule.runbook.strip()), RUNBOOK_MAX)}"))
    return blocks


def _parameters_block(story: EventStory, name: str) -> dict[str, Any]:
    if name not in story.record:
        return section(f"*{name}*: none")
    text = pretty_json(story.record[name])
    body = code_block(text, PARAMETERS_MAX + 8)
    if len(text) > PARAMETERS_MAX:
        return section(f"*{name}* (truncated: {len(text):,} characters)\n{body}")
    return section(f"*{name}*\n{body}")


def _found_text(via: str, location: str | None) -> str:
    how = "the event index" if via == "index" else f"a {escape(via)} query"
    where = f" in {inline(location, 400)}" if location else ""
    return f"found via {how}{where}"


def event_story(
    story: EventStory,
    *,
    via: str,
    record_text: str | None = None,
    attachment: str | None = None,
    names: AccountNames = NO_NAMES,
) -> Message:
    """The whole story of one event. `record_text` is record_json(story); when `attachment`
    names a file, the full record is said to follow as that file, otherwise a long record is
    shown clearly truncated."""
    record_text = record_json(story) if record_text is None else record_text
    heading = (
        f"{severity_heading(story.severity)}  {inline(story.action, 200)}  ·  eventID"
        f" {inline(story.event_id or '?', 80)}"
    )
    # Log text goes in code spans, as in alerts: `*bold*` in a user agent stays two stars.
    where = log_value(story.source_ip, 100)
    if story.country:
        where += f" ({escape(story.country)})"
    account = log_value(account_label(story.account, names), 120)
    identity = f"{log_value(story.identity_type, 60)}, account {account}"
    outcome = story.outcome
    blocks: list[dict[str, Any]] = [
        section(heading),
        fields_section(
            [
                ("When", log_value(story.event_time, 60)),
                ("Outcome", ("✅ " if outcome == "success" else "⚠️ ") + log_value(outcome, 600)),
                ("Who", log_value(story.principal, 400)),
                ("Identity", identity),
                ("Region", log_value(story.region, 60)),
                ("Source", where),
                ("User agent", log_value(story.user_agent, 400)),
                ("Rules matched", str(len(story.findings))),
            ]
        ),
    ]
    links = [_found_text(via, story.location)]
    if story.console_link:
        links.insert(0, f"<{escape(story.console_link)}|Open in the CloudTrail console>")
    blocks.append(context(" · ".join(links)))
    blocks.append({"type": "divider"})
    if story.findings:
        for finding in story.findings:
            blocks.extend(_finding_blocks(finding))
    else:
        blocks.append(context("No rule that is loaded now matches this event."))
    if story.gone_rules:
        gone = ", ".join(inline(rule_id, 80) for rule_id in story.gone_rules[:20])
        blocks.append(context(f"Flagged at enrichment by {gone}: no such rule is loaded now."))
    blocks.append({"type": "divider"})
    blocks.append(_parameters_block(story, "requestParameters"))
    blocks.append(_parameters_block(story, "responseElements"))
    blocks.extend(_record_blocks(record_text, attachment))
    rules = ", ".join(finding.rule.id for finding in story.findings) or "no rule matches"
    text = (
        f"{story.severity.name if story.severity else 'not flagged'} {story.action} by"
        f" {story.principal or '?'} (eventID {story.event_id or '?'}): {rules}"
    )
    return Message(fallback(escape(text)), fit_blocks(blocks, "(the rest is in the full record)"))


def _record_blocks(record_text: str, attachment: str | None) -> list[dict[str, Any]]:
    size = len(record_text)
    if not needs_upload(record_text):
        return [section(f"*Full record*\n{code_block(record_text, SECTION_TEXT_MAX - 20)}")]
    if attachment:
        return [
            context(
                f":paperclip: The full record ({size:,} characters) follows in this thread as"
                f" {inline(attachment, 100)}."
            )
        ]
    return [truncated_record_block(record_text)]


def truncated_record_block(record_text: str) -> dict[str, Any]:
    shown = INLINE_RECORD_MAX
    label = f"*Full record* (truncated: the first {shown:,} of {len(record_text):,} characters)"
    body = code_block(record_text[:shown] + "\n…", shown + 200)
    return section(f"{label}\n{body}")


def upload_failed(event_id: str, reason: str, record_text: str) -> Message:
    return Message(
        fallback(f"Could not attach the full record of {escape(event_id)}"),
        [
            section(
                f":warning: I could not attach the full record of {inline(event_id)} as a file"
                f" ({truncate(escape(reason), 300)}); here it is, truncated."
            ),
            truncated_record_block(record_text),
        ],
    )

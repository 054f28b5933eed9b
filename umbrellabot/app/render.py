"""Console rendering: summaries, rule lists, the story of an event (the alert table:
alert_table.py). Pure: builds rich renderables.

Everything that comes from a log is untrusted: it is shown as plain `Text` (never parsed as
rich markup) with control characters replaced, so a crafted userAgent cannot restyle the
table or send escape sequences to the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from umbrellabot.model.accounts import NO_NAMES, AccountNames, account_label
from umbrellabot.model.alerts import Alert
from umbrellabot.model.severity import Severity
from umbrellabot.query.story import EventStory, original_record, pretty_json
from umbrellabot.rules.rule import Rule
from umbrellabot.rules.testing import CaseResult

if TYPE_CHECKING:
    from umbrellabot.model.report import CycleReport

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def safe(value: object, limit: int = 200) -> Text:
    """Log-derived text made inert for the terminal."""
    if value is None:
        return Text("-", style="dim")
    text = _CONTROL.sub("�", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text)


def severity_text(severity: Severity) -> Text:
    return Text(severity.name, style=SEVERITY_STYLE[severity])


def group_by_event(alerts: Sequence[Alert]) -> list[list[Alert]]:
    """Alerts of the same event together (one row per event), highest severity first."""
    groups: dict[tuple[str | None, ...], list[Alert]] = {}
    for alert in alerts:
        key = (alert.event_id, alert.event_time, alert.action, alert.source_file)
        groups.setdefault(key, []).append(alert)
    ordered = [sorted(group, key=lambda a: (-a.severity, a.rule_id)) for group in groups.values()]
    ordered.sort(key=lambda group: (-group[0].severity, group[0].event_time or ""))
    return ordered


def problem_line(
    lines: Text, label: str, style: str, where: str, reason: str, suffix: str = ""
) -> None:
    """`<label> <file>: <reason>`, file and reason shown inert (they may come from a log)."""
    lines.append(f"{label} ", style=style)
    lines.append_text(safe(where, 300))
    lines.append(": ")
    lines.append_text(safe(reason, 300))
    lines.append(f"{suffix}\n")


def rule_origin(rule: Rule, default_root: Path | None = None) -> str:
    """Where a rule came from: `default/<file>` for the packaged pack, else its path; and what
    a later RULES_PATH entry did to it."""

    def shown(path: Path) -> str:
        if default_root is not None and path.is_relative_to(default_root):
            return f"default/{path.relative_to(default_root)}"
        return str(path)

    where = shown(rule.source)
    if rule.replaces is not None:
        where += f" (replaces {shown(rule.replaces)})"
    if rule.disabled_in is not None:
        where += f" (disabled in {shown(rule.disabled_in)})"
    return where


def rules_table(rules: Sequence[Rule], default_root: Path | None = None) -> RenderableType:
    table = Table(title=f"Rules ({len(rules)})", title_justify="left")
    for column in ("id", "severity", "title", "enabled"):
        table.add_column(column)
    table.add_column("from", overflow="fold")
    for rule in rules:
        table.add_row(
            Text(rule.id),
            severity_text(rule.severity),
            Text(f"{rule.title} (Sigma)" if rule.kind == "sigma" else rule.title),
            "yes" if rule.enabled else "no",
            Text(rule_origin(rule, default_root), style="dim"),
        )
    return table


def test_report(
    rules: Sequence[Rule], results: Sequence[CaseResult], verbose: bool = False
) -> RenderableType:
    out = Text()
    by_rule: dict[str, list[CaseResult]] = {rule.id: [] for rule in rules}
    for result in results:
        by_rule.setdefault(result.rule.id, []).append(result)
    for rule_id, cases in by_rule.items():
        failed = [case for case in cases if not case.passed]
        if not cases:
            continue
        mark, style = ("FAIL", "bold red") if failed else ("ok", "green")
        if failed or verbose:
            out.append(f"{mark:>4} ", style=style)
            out.append(f"{rule_id} ({len(cases) - len(failed)}/{len(cases)})\n")
        for case in failed:
            out.append(f"     - {case.case.name}: {case.detail}\n", style="red")
    total_failed = sum(not result.passed for result in results)
    untested = [rule_id for rule_id, cases in by_rule.items() if not cases]
    tested = len(by_rule) - len(untested)
    if untested:
        out.append(f"rules without test cases: {', '.join(untested)}\n", style="yellow")
    out.append(
        f"{len(results) - total_failed} cases passed, {total_failed} failed, over {tested} rules\n",
        style="bold red" if total_failed else "bold green",
    )
    return out


def cycle_summary(report: CycleReport, where: str) -> RenderableType:
    lines = Text()
    lines.append(f"Cycle over {where}: ", style="bold")
    lines.append(
        f"{report.regions} region folders{_insights(report)}, {report.listed} log files listed, "
        f"{report.files} processed, {report.records:,} records, {report.new_alerts} new alerts "
        f"in {report.duration_s:.1f}s\n"
    )
    counts = ", ".join(
        f"{report.by_severity[s]} {s.label}" for s in reversed(Severity) if report.by_severity[s]
    )
    lines.append(f"Rule matches by severity: {counts or 'none'}\n")
    requests = ", ".join(f"{count} {name}" for name, count in sorted(report.requests.items()))
    label = "S3 requests" if where.startswith("s3://") else "Folder work"  # no requests there
    lines.append(f"{label}: {requests or 'none'}\n", style="dim")
    if report.waiting:
        lines.append(f"{report.waiting} failed files wait for their next retry\n", style="yellow")
    for key, reason in report.failed:
        problem_line(lines, "Failed", "bold red", key, reason, " (will retry)")
    for key, reason in report.abandoned:
        problem_line(lines, "Gave up on", "bold red", key, reason)
    return lines


def _insights(report: CycleReport) -> str:
    return f" (and {report.insight_regions} of Insights events)" if report.insight_regions else ""


def event_story(
    story: EventStory, *, full_record: bool = True, names: AccountNames = NO_NAMES
) -> RenderableType:
    """`umbrellabot show`: the fields, the rules and why they matched, then the whole record."""
    parts: list[RenderableType] = []
    title = Text()
    title.append_text(severity_text(story.severity) if story.severity else Text("not flagged"))
    title.append("  ")
    title.append_text(safe(story.action, 120))
    title.append("  ")
    title.append_text(safe(story.event_id))
    parts.append(title)
    fields = Table(box=None, show_header=False, pad_edge=False)
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    who = safe(story.principal, 200)
    account = account_label(story.account, names) or "?"
    who.append(f" ({story.identity_type or 'unknown identity'}, account {account})")
    where = safe(story.region)
    where.append(" from ")
    where.append_text(safe(story.source_ip, 100))
    if story.country:
        where.append(f" ({story.country})")
    for name, value in (
        ("when", safe(story.event_time)),
        ("who", who),
        ("what", safe(story.action, 200)),
        ("outcome", safe(story.outcome, 400)),
        ("where", where),
        ("user agent", safe(story.user_agent, 400)),
        ("console", safe(story.console_link, 400)),
        ("stored in", safe(story.location, 400)),
    ):
        fields.add_row(name, value)
    parts.append(fields)
    for finding in story.findings:
        heading = Text("\n")
        heading.append_text(severity_text(finding.rule.severity))
        heading.append(f" {finding.rule.id}: ", style="bold")
        heading.append(finding.rule.title)
        if finding.rule.author:
            heading.append(f" (by {finding.rule.author})", style="dim")
        if not finding.at_enrichment:
            heading.append("  [matches now; not when it was enriched]", style="yellow")
        parts.append(heading)
        for label, found in finding.context:
            pair = Text(f"  {label}: ", style="bold")
            pair.append_text(safe(found, 300))
            parts.append(pair)
        lines = finding.match.lines(1)
        if finding.unless is not None:
            lines += ["  unless (must not hold):", *finding.unless.lines(2)]
        parts.append(Text("\n".join(lines)))
        if finding.rule.runbook:
            parts.append(Text(f"  runbook: {finding.rule.runbook.strip()}", style="dim"))
    for rule_id in story.gone_rules:
        parts.append(
            Text(f"\n{rule_id}: flagged at enrichment; no such rule is loaded now", style="yellow")
        )
    if full_record:
        parts.append(Text("\nFull record:", style="bold"))
        parts.append(Text(_CONTROL.sub("�", pretty_json(original_record(story.record)))))
    return Group(*parts)

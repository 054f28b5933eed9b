"""The alert table on the console, laid out for the terminal it is printed on.

Rich shrinks every column of a table that is too wide, so at 120 columns an IP split across two
lines and rule ids broke mid-word. Here the table is built at render time for the width it gets:
ids, IPs, times and eventIDs are never broken; the free text (the event, the principal, the
context) folds; and when even that does not fit, the least useful columns are left out, last
rank first, with a line saying which. `--wide` keeps them all, at the width they need (printed
with `crop=False`, so the terminal wraps the lines instead of rich squeezing the columns).
Everything from a log is inert text (render.safe).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from umbrellabot.app.render import group_by_event, safe, severity_text
from umbrellabot.model.alerts import Alert

_GAP = 3  # between two columns: a space of padding each side and the box's blank divider
_KEPT = 2  # the priority and the rules are never left out


@dataclass(frozen=True)
class Column:
    name: str
    rank: int  # the order of importance; the highest is left out first
    folds: bool  # free text that may wrap; the others are never broken
    min_width: int = 0


COLUMNS = (
    Column("priority", 0, folds=False),
    Column("rules", 1, folds=False),
    Column("event", 2, folds=True, min_width=16),
    Column("principal", 3, folds=True, min_width=16),
    Column("context", 4, folds=True, min_width=20),
    Column("time (UTC)", 5, folds=False),
    Column("source", 6, folds=False),
    Column("eventID", 7, folds=False),
)


def _cells(group: Sequence[Alert]) -> dict[str, Text]:
    first = group[0]
    source = safe(first.source_ip, 45)
    if first.country:
        source.append(f" ({first.country})")
    pairs = dict.fromkeys(pair for alert in group for pair in alert.context)  # every rule's
    context = Text("\n").join(safe(f"{label}: {value}", 120) for label, value in pairs)
    return {
        "priority": severity_text(first.severity),
        "rules": Text("\n").join(safe(alert.rule_id) for alert in group),
        "event": safe(first.action, 60),
        "principal": safe(first.principal, 300),
        "time (UTC)": safe(first.event_time),
        "source": source,
        "context": context if pairs else safe(None),
        "eventID": safe(first.event_id),
    }


def _natural(column: Column, rows: Sequence[dict[str, Text]]) -> int:
    """The width a column needs: its longest line (and its header)."""
    longest = max(
        (len(line) for row in rows for line in row[column.name].plain.split("\n")), default=0
    )
    return max(longest, len(column.name))


def fit(columns: Sequence[Column], rows: Sequence[dict[str, Text]], width: int) -> list[Column]:
    """The columns shown at `width`: all that fit, leaving out the highest ranks first."""
    shown = [c for c in columns if any(row[c.name].plain not in ("", "-") for row in rows)]
    shown = shown or list(columns[:_KEPT])

    def needed(kept: Sequence[Column]) -> int:
        widths = [
            min(c.min_width, _natural(c, rows)) if c.folds else _natural(c, rows) for c in kept
        ]
        return sum(widths) + _GAP * (len(kept) - 1)

    while len(shown) > _KEPT and needed(shown) > width:
        shown.remove(max(shown, key=lambda c: c.rank))
    return shown


def print_alerts(
    console: Console, alerts: Sequence[Alert], limit: int = 0, *, wide: bool = False
) -> None:
    """The table on `console`: fitted to a terminal; every column, uncropped, with `wide` and
    whenever the output is not a terminal (a pipe, a file, a log: nothing is left out there)."""
    wide = wide or not console.is_terminal
    console.print(AlertTable(alerts, limit, wide=wide), crop=not wide)


class AlertTable:
    """Alerts, one row per event, highest severity first; `limit` events at most (0: all)."""

    def __init__(self, alerts: Sequence[Alert], limit: int = 0, *, wide: bool = False) -> None:
        self.alerts = alerts
        self.limit = limit
        self.wide = wide

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        events = group_by_event(self.alerts)
        shown_events = events[: self.limit] if self.limit > 0 else events
        rows = [_cells(group) for group in shown_events]
        width = options.max_width
        columns = list(COLUMNS) if self.wide else fit(COLUMNS, rows, width)
        table = Table(
            title=f"Alerts: {len(self.alerts)} on {len(events)} events",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for column in columns:
            table.add_column(
                column.name,
                no_wrap=not column.folds,
                overflow="fold" if column.folds else "ellipsis",
                min_width=min(column.min_width, _natural(column, rows)) if column.folds else None,
            )
        for row in rows:
            table.add_row(*(row[column.name] for column in columns))
        if self.wide:  # as wide as the columns need; printed with crop=False, the terminal wraps
            natural = sum(_natural(c, rows) for c in columns) + _GAP * (len(columns) - 1)
            yield from console.render(table, options.update(width=max(width, natural)))
        else:
            yield table
        yield from self._notes(columns, rows, width, len(events) - len(shown_events))

    def _notes(
        self, columns: Sequence[Column], rows: Sequence[dict[str, Text]], width: int, more: int
    ) -> Iterator[Text]:
        hidden = [
            c.name
            for c in COLUMNS
            if c not in columns and any(row[c.name].plain not in ("", "-") for row in rows)
        ]
        if hidden:
            yield Text(
                f"not shown at {width} columns: {', '.join(hidden)} (--wide shows every column)",
                style="dim",
            )
        if more > 0:
            yield Text(f"… {more} more events not shown (--limit 0 shows all)", style="dim")

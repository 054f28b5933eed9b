"""The console's alert table at 80, 120 and 200 columns: ids, IPs, times and eventIDs never
broken, the least useful columns left out first (and named), `--wide` showing every one."""

from __future__ import annotations

import pytest
from rich.console import Console

from umbrellabot.app.alert_table import AlertTable
from umbrellabot.model.alerts import Alert
from umbrellabot.model.severity import Severity

EVENT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
IPV6 = "2001:db8:85a3:1234:8a2e:370:7334:abcd"
PRINCIPAL = "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_AdministratorAccess/jdoe"


def alert(
    rule: str,
    *,
    ip: str = "192.168.10.20",
    context: tuple[tuple[str, str], ...] = (),
    event_id: str = EVENT_ID,
) -> Alert:
    return Alert(
        event_id=event_id,
        event_time="2026-11-29T10:00:00Z",
        event_source="iam.amazonaws.com",
        event_name="CreateAccessKey",
        principal=PRINCIPAL,
        identity_type="AssumedRole",
        account="111111111111",
        region="us-east-1",
        source_ip=ip,
        country="US",
        user_agent="aws-cli/2.15",
        error_code=None,
        rule_id=rule,
        rule_title="An access key",
        severity=Severity.HIGH,
        runbook="",
        author=None,
        context=context,
    )


ALERTS = [
    alert("iam-access-key-created-for-another-user", context=(("key created for", "bob"),)),
    alert("iam-access-key-created"),
    alert("console-login-without-mfa", ip=IPV6, event_id="9f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"),
]


def render(width: int, *, wide: bool = False) -> str:
    console = Console(width=width, color_system=None, force_terminal=False, record=True)
    console.print(AlertTable(ALERTS, wide=wide), crop=not wide)
    return console.export_text()


def header(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("priority"))


@pytest.mark.parametrize("width", [80, 120, 200])
def test_nothing_is_broken_and_nothing_overflows(width: int) -> None:
    text = render(width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    for whole in (
        "iam-access-key-created-for-another-user",
        "iam-access-key-created",
        "console-login-without-mfa",
    ):
        assert any(whole in line for line in lines), (whole, text)
    shown = header(text)
    for column, value in (
        ("source", IPV6),
        ("eventID", EVENT_ID),
        ("time", "2026-11-29T10:00:00Z"),
    ):
        if column in shown:
            assert any(value in line for line in lines), (value, text)


def test_the_least_useful_columns_go_first_and_are_named() -> None:
    narrow, middle, full = (header(render(width)) for width in (80, 120, 200))
    assert narrow.split() == ["priority", "rules", "event"]
    assert "principal" in middle and "context" in middle and "eventID" not in middle
    for name in ("principal", "context", "time", "source"):
        assert name in full
    said = " ".join(render(80).split())
    assert "not shown at 80 columns: principal, context, time (UTC), source, eventID" in said
    # An IPv6 source (42 characters) leaves no room for the eventID at 200; an IPv4 one does.
    assert "not shown at 200 columns: eventID (--wide" in " ".join(render(200).split())
    console = Console(width=200, color_system=None, record=True)
    console.print(AlertTable(ALERTS[:2]))
    assert "eventID" in header(console.export_text())


def test_wide_shows_every_column_at_any_width() -> None:
    text = render(80, wide=True)
    shown = header(text)
    for name in ("priority", "rules", "event", "principal", "context", "time", "source", "eventID"):
        assert name in shown
    assert "not shown" not in text
    lines = text.splitlines()
    for whole in (
        IPV6,
        EVENT_ID,
        "iam-access-key-created-for-another-user",
        "key created for: bob",
    ):
        assert any(whole in line for line in lines), (whole, text)


def test_log_text_stays_inert() -> None:
    hostile = alert("r", context=(("user", "[bold red]x[/]\x1b[2J"),))
    console = Console(width=200, color_system=None, record=True)
    console.print(AlertTable([hostile], wide=True), crop=False)
    text = console.export_text()
    assert "[bold red]x[/]" in text and "\x1b" not in text

"""A rule's `context:`: what happened, in the alert, the Slack message, the console and `show`;
every default rule lists the fields a responder needs first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.alerts import alert_from_json, alert_to_json
from umbrellabot.model.records import Event
from umbrellabot.rules.context import context_of, parse_context
from umbrellabot.rules.expressions import ExpressionError
from umbrellabot.rules.rule import RuleError, default_rules_path, load_rules
from umbrellabot.slack.alert_messages import alert_message

VARIABLES = {"allowed_countries": ["US"]}
RULE = """\
rules:
  - id: user-created
    title: IAM user created
    severity: high
    match: {{eventName: CreateUser}}
    context: {context}
"""
CREATE_USER: dict[str, Any] = {
    "eventName": "CreateUser",
    "eventSource": "iam.amazonaws.com",
    "eventID": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    "sourceIPAddress": "203.0.113.7",
    "requestParameters": {"userName": "mallory", "tags": [{"key": "team", "value": "x"}]},
    "responseElements": {"user": {"arn": "arn:aws:iam::111111111111:user/mallory"}},
    "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111111111111"},
}


def rule_with(tmp_path: Path, context: str) -> Any:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(context=context))
    [rule] = load_rules([path], VARIABLES)
    return rule


def test_labels_paths_and_values(tmp_path: Path) -> None:
    rule = rule_with(
        tmp_path,
        '[{"user created": requestParameters.userName}, sourceIPAddress, requestParameters.tags,'
        " {missing: requestParameters.nope}, {mfa: additionalEventData.MFAUsed}]",
    )
    pairs = context_of(rule.context, Event(CREATE_USER))
    assert pairs == (
        ("user created", "mallory"),
        ("sourceIPAddress", "203.0.113.7"),
        ("requestParameters.tags", '{"key":"team","value":"x"}'),
    )  # a field the event lacks is left out


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("requestParameters.userName", "context: expected a list"),
        ("[{a: b, c: d}]", "context[0]: expected a dotted path or {label: dotted.path}"),
        ("[3]", "context[0]: expected a dotted path or {label: dotted.path}"),
        ('["request parameters"]', "context[0]: expected a dotted path"),
        ("[{user: 'a..b'}]", "context[0]: expected a dotted path"),
        ("[{x: a}, {x: b}]", "context: label 'x' is used twice"),
        ("[" + ", ".join(f"f{n}" for n in range(13)) + "]", "context: at most 12 fields"),
    ],
)
def test_a_bad_context_names_file_rule_and_item(tmp_path: Path, context: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        rule_with(tmp_path, context)
    text = str(caught.value)
    assert "rules.yaml" in text and "'user-created'" in text and message in text, text


def test_the_alert_carries_it_through_the_outbox_and_into_slack(tmp_path: Path) -> None:
    rule = rule_with(tmp_path, '[{"user created": requestParameters.userName}]')
    hostile = {**CREATE_USER, "requestParameters": {"userName": "<!channel> `x` *b*"}}
    alert = alert_for(Event(hostile), rule)
    assert alert.context == (("user created", "<!channel> `x` *b*"),)
    assert alert_from_json(alert_to_json(alert)) == alert  # stored and read back alike
    message = alert_message(alert)
    [section] = [
        block["text"]["text"]
        for block in message.blocks
        if block.get("type") == "section" and "Context" in block.get("text", {}).get("text", "")
    ]
    assert section == "*Context*\nuser created: `&lt;!channel&gt; 'x' *b*`"  # inert log text


def test_parse_context_refuses_non_text_labels() -> None:
    with pytest.raises(ExpressionError, match="expected a label"):
        parse_context([{3: "eventName"}])


def test_every_default_rule_says_what_happened() -> None:
    rules = load_rules([default_rules_path()], VARIABLES)
    assert len(rules) >= 68
    for rule in rules:
        assert rule.context, f"{rule.id} lists no context"
        for case in rule.tests:
            if case.expect:
                found = context_of(rule.context, Event(case.record, case.geo_country))
                assert found, f"{rule.id}: no context field in its case {case.name!r}"


def test_the_security_group_alert_shows_the_port_and_the_cidr() -> None:
    [rule] = [
        r
        for r in load_rules([default_rules_path()], VARIABLES)
        if r.id == "security-group-ingress-open-to-world"
    ]
    record = {
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress",
        "requestParameters": {
            "groupId": "sg-0123",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    }
    pairs = dict(context_of(rule.context, Event(record)))
    assert pairs["from port"] == "22" and pairs["CIDR"] == "0.0.0.0/0"
    assert pairs["group"] == "sg-0123" and pairs["protocol"] == "tcp"


def test_show_and_the_bot_say_it_per_rule(tmp_path: Path) -> None:
    from rich.console import Console

    from umbrellabot.app.render import event_story
    from umbrellabot.query.story import build_story
    from umbrellabot.slack import story_reply

    rule = rule_with(tmp_path, '[{"user created": requestParameters.userName}]')
    story = build_story(CREATE_USER, [rule])
    console = Console(width=120, color_system=None, record=True)
    console.print(event_story(story, full_record=False))
    assert "user created: mallory" in console.export_text()
    message = story_reply.event_story(story, via="index", attachment=None)
    texts = [b.get("text", {}).get("text", "") for b in message.blocks]
    assert "*Context*\nuser created: `mallory`" in texts

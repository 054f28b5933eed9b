"""Rules read event logs unless they opt in to CloudTrail Insights records (eventType:
AwsCloudTrailInsight); the pack's Insight rule alerts on an Insight's start."""

from __future__ import annotations

from pathlib import Path

from builders import insight_record, record

from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.records import Event
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet, reads_events, reads_insights
from umbrellabot.rules.testing import run_rule_tests
from umbrellabot.slack.alert_messages import alert_message

VARIABLES = {"allowed_countries": ["US"]}


def rules_from(tmp_path: Path, *specs: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + "\n".join(f"  - {spec}" for spec in specs))
    return RuleSet(load_rules([path], VARIABLES))


def ids(ruleset: RuleSet, event: dict[str, object]) -> list[str]:
    return [rule.id for rule in ruleset.match(Event(event))]


def test_a_rule_reads_insights_only_when_it_requires_their_event_type(tmp_path: Path) -> None:
    ruleset = rules_from(
        tmp_path,
        "{id: any-record, title: t, severity: low, match: {eventVersion: {exists: true}}}",
        "{id: by-name, title: t, severity: low, match: {eventName: StopLogging}}",
        "{id: insights, title: t, severity: low, match: {eventType: AwsCloudTrailInsight}}",
        "{id: both, title: t, severity: low, match: {eventType: [AwsApiCall, AwsCloudTrailInsight]}}",  # noqa: E501
        "{id: not-insight, title: t, severity: low, match: {not: {eventType: AwsCloudTrailInsight}}}",  # noqa: E501
    )
    insight = insight_record(event_name="StopLogging") | {"eventName": "StopLogging"}
    assert ids(ruleset, insight) == ["insights", "both"]
    call = record("StopLogging", "cloudtrail.amazonaws.com", eventType="AwsApiCall")
    assert ids(ruleset, call) == ["any-record", "by-name", "both", "not-insight"]
    by_id = {rule.id: rule for rule in ruleset.enabled}
    assert [reads_insights(by_id[n]) for n in ("any-record", "insights", "both")] == [0, 1, 1]
    assert [reads_events(by_id[n]) for n in ("any-record", "insights", "both")] == [1, 0, 1]


def test_the_pack_alerts_on_an_insights_start_with_api_baseline_and_average() -> None:
    pack = RuleSet(load_rules([default_rules_path()], VARIABLES))
    start = insight_record(baseline=0.0026, average=12.0)
    assert ids(pack, start) == ["cloudtrail-insight-started"]
    assert ids(pack, insight_record("End")) == []
    (rule,) = pack.match(Event(start))
    alert = alert_for(Event(start), rule, "AWSLogs/x/CloudTrail-Insight/us-east-1/i.json.gz")
    context = dict(alert.context)
    assert context["API"] == "DeleteAccessKey" and context["service"] == "iam.amazonaws.com"
    assert context["baseline per minute"] == "0.0026" and context["insight per minute"] == "12.0"
    assert alert.account == "111111111111" and alert.event_id == start["eventID"]
    text = alert_message(alert).text
    assert "CloudTrail Insights iam:DeleteAccessKey (unusual call rate) in us-east-1" in text
    only_insights = [rule.id for rule in pack.enabled if reads_insights(rule)]
    assert only_insights == ["cloudtrail-insight-started"]


def test_a_test_case_expecting_an_event_rule_to_match_an_insight_says_why(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: stop\n    title: t\n    severity: high\n    match: {eventName: StopLogging}\n"
        "    tests:\n"
        "      - {name: wrong, expect: true,"
        " record: {eventType: AwsCloudTrailInsight, eventName: StopLogging}}\n"
        "      - {name: right, expect: false,"
        " record: {eventType: AwsCloudTrailInsight, eventName: StopLogging}}\n"
    )
    wrong, right = run_rule_tests(load_rules([path], VARIABLES), lambda address: None)
    assert not wrong.passed and right.passed
    assert "the record is a CloudTrail Insights event and the rule reads event logs" in wrong.detail

"""Sigma correlation rules become SQL detections that filter on their base rules' ids in xrules:
a file of base rules and a correlation (`---` between them), records enriched by those rules,
and the detection run on DuckDB over the enriched copies, for event_count, value_count and
temporal. The base rules of a correlation without `generate: true` do not alert on their own."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, log_key

from umbrellabot.enrich.enrichment import enrich_record
from umbrellabot.model.severity import Severity
from umbrellabot.query.detection_runs import run_detections
from umbrellabot.query.detections import DetectionError
from umbrellabot.query.duckdb_engine import DuckDBEngine
from umbrellabot.query.sigma_detections import column_of, correlation_detections
from umbrellabot.rules.rule import RuleError, load_rule_catalog
from umbrellabot.rules.ruleset import RuleSet

NOW = datetime(2026, 3, 10, 12, 7, tzinfo=UTC)
FAILED = "5d8a3a7e-1111-4000-8000-000000000001"
SUCCESS = "5d8a3a7e-1111-4000-8000-000000000002"
_ids = itertools.count()

BASE = f"""
title: Failed console sign-in
id: {FAILED}
name: failed_console_login
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Failure
  condition: selection
level: high
---
title: Console sign-in
id: {SUCCESS}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Success
  condition: selection
level: high
"""


def correlation(kind: str, rules: list[str], condition: str, **extra: str) -> str:
    more = "".join(f"  {key}: {value}\n" for key, value in extra.items())
    return f"""
---
title: A correlation of kind {kind}
id: 5d8a3a7e-2222-4000-8000-{len(kind):012d}
author: Jane Doe
status: test
correlation:
  type: {kind}
  rules: [{", ".join(rules)}]
  group-by: [sourceIPAddress]
  timespan: 15m
{more}  condition: {condition}
level: critical
"""


def login(minute: int, ip: str, outcome: str = "Failure", who: str = "alice") -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT_A}:user/{who}"},
        "eventTime": f"2026-03-10T11:{minute:02d}:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "eventID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "eventType": "AwsConsoleSignIn",
        "recipientAccountId": ACCOUNT_A,
        "responseElements": {"ConsoleLogin": outcome},
    }


def enriched_lake(root: Path, rules: RuleSet, records: Iterable[dict[str, Any]]) -> Path:
    lines = []
    for record in records:
        enrich_record(record, rules, lambda address: None)
        lines.append(orjson.dumps(record) + b"\n")
    path = root / log_key(ACCOUNT_A, "us-east-1", NOW.date(), "part0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(lines)))
    return root


async def run(tmp_path: Path, text: str, records: list[dict[str, Any]]) -> list[Any]:
    path = tmp_path / "rules" / "logins.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    catalog = load_rule_catalog([path], {})
    [detection] = correlation_detections(catalog.correlations)
    lake = enriched_lake(tmp_path / "lake", RuleSet(catalog.rules), records)
    return await run_detections(DuckDBEngine(lake), [detection], NOW)


async def test_event_count_fires_per_group(tmp_path: Path) -> None:
    text = BASE + correlation("event_count", ["failed_console_login"], "{gte: 5}")
    burst = [login(m, "203.0.113.9") for m in range(1, 7)]
    few = [login(m, "198.51.100.1") for m in range(1, 4)]
    [result] = await run(tmp_path, text, burst + few)
    assert result.group_key == {"sourceipaddress": "203.0.113.9"}
    assert result.count == 6 and result.detection.severity is Severity.CRITICAL
    assert result.detection.author == "Jane Doe"


async def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    text = BASE + correlation("value_count", [FAILED], "{gte: 3, field: userIdentity.arn}")
    spray = [login(m, "203.0.113.9", who=f"user{m}") for m in range(1, 4)]
    one_user = [login(m, "198.51.100.1") for m in range(1, 8)]  # many, but one user
    [result] = await run(tmp_path, text, spray + one_user)
    assert result.group_key == {"sourceipaddress": "203.0.113.9"}


async def test_temporal_needs_every_rule_in_the_window(tmp_path: Path) -> None:
    text = BASE + correlation("temporal", ["failed_console_login", SUCCESS], "{gte: 1}")
    both = [login(1, "203.0.113.9"), login(3, "203.0.113.9", "Success")]
    only_failed = [login(1, "198.51.100.1"), login(2, "198.51.100.1")]
    [result] = await run(tmp_path, text, both + only_failed)
    assert result.group_key == {"sourceipaddress": "203.0.113.9"}


def test_base_rules_do_not_alert_on_their_own_unless_generate(tmp_path: Path) -> None:
    path = tmp_path / "logins.yml"
    path.write_text(BASE + correlation("event_count", [FAILED], "{gte: 5}"))
    rules = {rule.id: rule for rule in load_rule_catalog([path], {}).rules}
    assert rules[FAILED].alerts is False and rules[SUCCESS].alerts is True
    path.write_text(BASE + correlation("event_count", [FAILED], "{gte: 5}", generate="true"))
    rules = {rule.id: rule for rule in load_rule_catalog([path], {}).rules}
    assert rules[FAILED].alerts is True


def test_a_correlation_naming_no_rule_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logins.yml"
    path.write_text(BASE + correlation("event_count", ["no_such_rule"], "{gte: 5}"))
    with pytest.raises(RuleError) as refused:
        load_rule_catalog([path], {})
    [line] = refused.value.problems
    assert "logins.yml" in line and "'no_such_rule'" in line and "correlation.rules" in line


def test_an_unsupported_kind_is_refused_or_skipped(tmp_path: Path) -> None:
    path = tmp_path / "logins.yml"
    path.write_text(BASE + correlation("value_sum", [FAILED], "{gte: 5, field: x}"))
    with pytest.raises(RuleError, match="unsupported: value_sum"):
        load_rule_catalog([path], {})
    catalog = load_rule_catalog([path], {}, sigma_skip_unsupported=True)
    assert catalog.correlations == [] and len(catalog.rules) == 2


@pytest.mark.parametrize(
    ("field", "sql"),
    [
        ("sourceIPAddress", "sourceipaddress"),
        ("userIdentity.arn", "useridentity.arn"),
        (
            "userIdentity.sessionContext.sessionIssuer.arn",
            "useridentity.sessioncontext.sessionissuer.arn",
        ),
        ("requestParameters.bucketName", "json_extract_scalar(requestparameters, '$.bucketName')"),
    ],
)
def test_sigma_fields_as_columns(field: str, sql: str) -> None:
    assert column_of(field) == sql


def test_a_group_by_field_that_is_no_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logins.yml"
    text = BASE + correlation("event_count", [FAILED], "{gte: 5}")
    path.write_text(text.replace("group-by: [sourceIPAddress]", "group-by: [src_ip]"))
    with pytest.raises(DetectionError, match="src_ip"):
        correlation_detections(load_rule_catalog([path], {}).correlations)

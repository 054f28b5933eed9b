"""Enrichment: every record out exactly once with its fields unchanged, plus the x-fields."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from umbrellabot.enrich.enrichment import enrich_record, enrich_stream
from umbrellabot.enrich.geoip import OfflineGeo
from umbrellabot.enrich.reader import LogFormatError
from umbrellabot.model.schema import ENRICHMENT_FIELDS
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet

VARIABLES = {"allowed_countries": ["US"]}


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return RuleSet(load_rules([default_rules_path()], VARIABLES))


def log_file(records: list[Any]) -> io.BytesIO:
    return io.BytesIO(gzip.compress(orjson.dumps({"Records": records})))


def enriched_lines(sink: io.BytesIO) -> list[dict[str, Any]]:
    text = gzip.decompress(sink.getvalue()).decode("utf-8")
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def strip_enrichment(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in ENRICHMENT_FIELDS}


def test_every_shared_record_passes_through_unchanged(shared_data: Path, ruleset: RuleSet) -> None:
    lines = (shared_data / "cloudtrail" / "events.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines if line.strip()]
    assert len(records) == 3487
    sink = io.BytesIO()
    result = enrich_stream(
        log_file(records), sink, ruleset, OfflineGeo().country, alert_min_severity=Severity.INFO
    )
    out = enriched_lines(sink)
    assert result.records == len(out) == len(records)
    for original, enriched in zip(records, out, strict=True):
        assert strip_enrichment(enriched) == original
        if "xrules" in enriched:
            assert enriched["xpriority"] in {s.name for s in Severity}
            assert enriched["xrules"]
    assert result.flagged == sum("xrules" in record for record in out) > 0
    assert len(result.alerts) == sum(len(record.get("xrules", [])) for record in out)


def test_priority_rules_and_country(ruleset: RuleSet) -> None:
    record = {
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "sourceIPAddress": "81.2.69.142",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "xpriority": "stale",  # an earlier enrichment is replaced, not kept
    }
    _, matched = enrich_record(record, ruleset, OfflineGeo().country)
    assert {"iam-user-created", "api-call-from-disallowed-country"} <= set(record["xrules"])
    assert record["xpriority"] == max(rule.severity for rule in matched).name
    assert record["xcountry_code"] == "GB"
    quiet = {"eventName": "DescribeInstances", "sourceIPAddress": "AWS Internal"}
    enrich_record(quiet, ruleset, OfflineGeo().country)
    assert not set(ENRICHMENT_FIELDS) & set(quiet)


def test_ipv6_non_ascii_and_huge_parameters(ruleset: RuleSet) -> None:
    huge = {"items": [{"key": f"k{i}", "value": "x" * 100} for i in range(20_000)]}
    records = [
        {
            "eventName": "GetObject",
            "sourceIPAddress": "2a01:4f8::1",
            "userAgent": "Bücher/1.0 ☂ 雨傘 \u202e",
            "requestParameters": {"note": "naïve — ok"},
        },
        {"eventName": "PutBucketTagging", "sourceIPAddress": "8.8.8.8", "requestParameters": huge},
    ]
    sink = io.BytesIO()
    enrich_stream(log_file(records), sink, ruleset, OfflineGeo().country)
    out = enriched_lines(sink)
    assert out[0]["xcountry_code"] == "DE"
    assert "api-call-from-disallowed-country" in out[0]["xrules"]
    raw = gzip.decompress(sink.getvalue())
    assert "雨傘".encode() in raw  # non-ASCII kept as is, not \u-escaped
    assert [strip_enrichment(r) for r in out] == records


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"this is not a log", "not gzip"),
        (gzip.compress(b"{not json"), "JSON"),
        (gzip.compress(b'{"Records": [{"a": 1}, {"b"')[:-12], "truncated"),
        (gzip.compress(b'{"Records": [{"a": 1}, {"b": 2'), "truncated"),
        (gzip.compress(b'{"records": []}'), "no Records"),
        (gzip.compress(b'{"Records": {"a": 1}}'), "Records is not a list"),
        (gzip.compress(b"[1, 2]"), "Records"),
    ],
)
def test_bad_files_raise_a_reason(ruleset: RuleSet, payload: bytes, reason: str) -> None:
    with pytest.raises(LogFormatError, match=reason):
        enrich_stream(io.BytesIO(payload), io.BytesIO(), ruleset, OfflineGeo().country)


def test_empty_records_list_is_a_valid_file(ruleset: RuleSet) -> None:
    sink = io.BytesIO()
    result = enrich_stream(log_file([]), sink, ruleset, OfflineGeo().country)
    assert result.records == 0
    assert gzip.decompress(sink.getvalue()) == b""

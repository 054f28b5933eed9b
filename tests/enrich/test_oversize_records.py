"""A record over MAX_RECORD_BYTES: never held whole, copied unparsed into the enriched output
(its text unchanged, plus the flag), alerted as `umbrellabot-record-too-large`, and what is kept
of it bounded. Every other record of the file is read as before."""

from __future__ import annotations

import gzip
import io
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_log_reader_writer import RECORD, SPACE

from umbrellabot.enrich.enrichment import enrich_stream
from umbrellabot.enrich.oversize import KEEP_BYTES
from umbrellabot.enrich.reader import LogFormatError, OversizeRecord, read_entries, read_records
from umbrellabot.model.facts import FACT_CHARS
from umbrellabot.model.own_alerts import RECORD_TOO_LARGE
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet

LIMIT = 4096
RULES = RuleSet(load_rules([default_rules_path()], {"allowed_countries": ["US"]}))


def event(number: int, user_agent: str = "aws-cli/2.15") -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": "111122223333", "userName": "mallory"},
        "eventTime": "2026-12-02T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": user_agent,
        "requestParameters": {"userName": f"u{number}", "odd": '"}],{[\\', "list": [{}, {"a": []}]},
        "eventID": f"event-{number}",
        "recipientAccountId": "111122223333",
    }


def entries(data: bytes, chunk_size: int, limit: int = LIMIT) -> list[Any]:
    """Each entry with its text consumed as it comes (as the enrichment does)."""
    found: list[Any] = []
    for entry in read_entries(io.BytesIO(data), chunk_size=chunk_size, max_record_bytes=limit):
        if isinstance(entry, OversizeRecord):
            text = b"".join(entry.pieces) + b"}"
            found.append(("oversize", orjson.loads(text), entry.size, entry.facts))
        else:
            found.append(entry)
    return found


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 1 << 20])
def test_an_oversize_record_is_streamed_its_text_unchanged(chunk_size: int) -> None:
    big = event(1, "A" * 50_000 + '\\"}]{[,' + "B" * 99)
    data = orjson.dumps({"Records": [event(0), big, event(2)]}, option=orjson.OPT_INDENT_2)
    for raw in (data, gzip.compress(data)):
        first, (kind, copied, size, facts), last = entries(raw, chunk_size)
        assert first == event(0) and last == event(2)
        assert kind == "oversize" and copied == big and size > LIMIT
        assert facts == {
            "eventTime": "2026-12-02T10:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "eventID": "event-1",
            "recipientAccountId": "111122223333",
        }
    # read_records leaves it out (the geo-IP prefetch has no use for it)
    assert read_records(io.BytesIO(data), max_record_bytes=LIMIT).__next__() == event(0)
    assert len(list(read_records(io.BytesIO(data), max_record_bytes=LIMIT))) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(RECORD, max_size=6),
    limit=st.integers(min_value=2, max_value=120),
    chunk_size=st.integers(min_value=1, max_value=200),
    space=SPACE,
)
def test_property_every_record_parsed_or_streamed_by_its_size(
    records: list[dict[str, Any]], limit: int, chunk_size: int, space: bytes
) -> None:
    texts = [orjson.dumps(r) for r in records]
    data = b'{"Records":[' + (space + b"," + space).join(texts) + space + b"]}"
    found = entries(data, chunk_size, limit)
    assert len(found) == len(records)
    for text, expected, entry in zip(texts, records, found, strict=True):
        if len(text) > limit:
            assert entry[0] == "oversize" and entry[1] == expected and entry[2] == len(text)
        else:
            assert entry == expected


@pytest.mark.parametrize(
    ("tail", "message"),
    [(b'AAAA"', "truncated JSON"), (b'AAA"]}', "not JSON: unbalanced brackets at byte")],
)
def test_a_broken_oversize_record_is_a_format_error(tail: bytes, message: str) -> None:
    data = b'{"Records":[{"eventVersion":"1.08","userAgent":"' + b"A" * 12_000_000 + tail
    with pytest.raises(LogFormatError, match=message):
        entries(data, 512)


def test_enrichment_copies_flags_alerts_and_indexes_it_bounded() -> None:
    big = event(1, "A" * 20_000)
    data = orjson.dumps({"Records": [event(0), big, event(2)]})
    sink = io.BytesIO()
    result = enrich_stream(
        io.BytesIO(gzip.compress(data)),
        sink,
        RULES,
        lambda address: "US",
        source_name="AWSLogs/x.json.gz",
        index_events=True,
        max_record_bytes=LIMIT,
    )
    lines = [orjson.loads(line) for line in gzip.decompress(sink.getvalue()).splitlines()]
    assert lines[1] == {**big, "xpriority": "HIGH", "xrules": [RECORD_TOO_LARGE]}
    assert [line["eventID"] for line in lines] == ["event-0", "event-1", "event-2"]
    assert result.records == 3 and [event_id for event_id, *_ in result.events] == [
        "event-0",
        "event-1",
        "event-2",
    ]
    [too_large] = [alert for alert in result.alerts if alert.rule_id == RECORD_TOO_LARGE]
    assert too_large.event_id == "event-1" and too_large.account == "111122223333"
    assert (
        f"{len(orjson.dumps(big)):,} bytes" in too_large.runbook
        and "MAX_RECORD_BYTES (4,096)" in too_large.runbook
    )
    # without the limit the record is parsed, and what an alert keeps of it is bounded
    unlimited = enrich_stream(
        io.BytesIO(data), io.BytesIO(), RULES, lambda a: "US", max_record_bytes=None
    )
    assert all(len(alert.user_agent or "") <= FACT_CHARS for alert in unlimited.alerts)
    assert RECORD_TOO_LARGE not in {alert.rule_id for alert in unlimited.alerts}


def test_what_is_kept_of_a_huge_record_is_bounded() -> None:
    huge = event(1, "A" * (8 * KEEP_BYTES))
    data = orjson.dumps({"Records": [huge]})
    [entry] = list(read_entries(io.BytesIO(data), chunk_size=4096, max_record_bytes=LIMIT))
    assert isinstance(entry, OversizeRecord)
    longest = 0
    for piece in entry.pieces:
        longest = max(longest, len(piece))
    assert longest <= 2 * 4096 + LIMIT  # handed on a window at a time, never whole

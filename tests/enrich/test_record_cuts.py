"""Records cut out one by one with their own text (record_cuts.py), and enrichment copying that
text with the x-fields after it: the same records, lines and fields as serializing them."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from umbrellabot.enrich.enrichment import enrich_stream
from umbrellabot.enrich.geoip import OfflineGeo
from umbrellabot.enrich.reader import read_texted
from umbrellabot.enrich.record_cuts import RecordCutter, record_ends
from umbrellabot.rules.rule import default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet

KEY = b'{"eventVersion":'


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return RuleSet(load_rules([default_rules_path()], {"allowed_countries": ["US"]}))


def texts_of(chunk: bytes, key: bytes | None = KEY) -> list[bytes]:
    cutter = RecordCutter(chunk, key)
    first = cutter.first()
    return [] if first is None else [text for _, text in cutter.rest(first)]


@pytest.mark.parametrize(
    ("records", "cut"),
    [
        ([{"eventVersion": "1", "a": 1}, {"eventVersion": "1", "b": 2}], 2),
        ([{"eventVersion": "1", "items": [{"a": 1}, {"b": [{"d": 1}, {"e": 2}]}]}] * 3, 3),
        ([{"awsRegion": "us-east-1"}, {"eventVersion": "1"}, {"requestParameters": [{}]}], 3),
        # a `},{` inside text, a nested list beginning with the first key: not cut at all
        ([{"eventVersion": "1", "p": '{"x":"}},{"}'}, {"eventVersion": "1"}], 0),
        ([{"eventVersion": "1", "x": [{"a": 1}, {"eventVersion": "2"}]}, {"eventVersion": "3"}], 0),
    ],
)
def test_each_record_is_cut_with_its_own_text(records: list[dict[str, Any]], cut: int) -> None:
    chunk = b",".join(orjson.dumps(record) for record in records)
    texts = texts_of(chunk)
    assert texts == [orjson.dumps(record) for record in records[:cut]]
    document = b'{"Records":[' + chunk + b"]}"
    assert [record for record, _ in read_all(document)] == records  # the rest, carefully


def test_a_cut_inside_a_record_ends_the_run_where_it_is_wrong() -> None:
    # brace counts misled by a `{` in text: the first record is cut, then the run stops
    records = [{"eventVersion": "1"}, {"e": "{", "n": [{"a": 1}, {"b": 2}]}, {"eventVersion": "2"}]
    chunk = b",".join(orjson.dumps(record) for record in records)
    assert record_ends(chunk, KEY)[0] == len(orjson.dumps(records[0]))
    cutter = RecordCutter(chunk, KEY)
    first = cutter.first()
    assert first is not None
    got = list(cutter.rest(first))
    assert [record for record, _ in got] == records[: len(got)]
    assert cutter.done == sum(len(text) + 1 for _, text in got) - 1


def read_all(data: bytes, chunk_size: int = 1 << 20) -> list[tuple[Any, bytes | None]]:
    return list(read_texted(io.BytesIO(data), chunk_size=chunk_size))


def test_texts_of_a_delivered_file_are_its_bytes(shared_data: Path) -> None:
    path = next((shared_data / "cloudtrail" / "s3-layout").rglob("*.json.gz"))
    text = gzip.decompress(path.read_bytes())
    entries = read_all(path.read_bytes())
    records = json.loads(text)["Records"]
    assert [record for record, _ in entries] == records
    cut = [piece for _, piece in entries if piece is not None]
    assert len(cut) >= len(records) - 1  # the last may come the careful way
    for piece in cut:
        assert piece in text


def test_a_pretty_printed_file_has_no_texts() -> None:
    records = [{"eventVersion": "1", "a": i} for i in range(50)]
    entries = read_all(json.dumps({"Records": records}, indent=2).encode())
    assert [record for record, _ in entries] == records
    assert all(text is None for _, text in entries)


@pytest.mark.parametrize("chunk_size", [64, 1000, 1 << 20])
def test_a_record_orjson_refuses_is_read_the_careful_way_and_cutting_goes_on(
    chunk_size: int,
) -> None:
    good = [orjson.dumps({"eventVersion": "1", "i": i, "pad": "x" * 40}) for i in range(40)]
    refused = b'{"eventVersion":"1","n":1e400}'  # beyond a double: the stdlib reads it
    data = b'{"Records":[' + b",".join([*good[:20], refused, *good[20:]]) + b"]}"
    entries = read_all(data, chunk_size)
    assert len(entries) == 41
    assert entries[20][1] is None and entries[20][0]["n"] == float("inf")
    assert [text for _, text in entries if text is not None] == [
        text for text in good if any(text == t for _, t in entries)
    ]
    assert sum(text is not None for _, text in entries) >= 30


def enrich(records_text: bytes, ruleset: RuleSet) -> list[bytes]:
    sink = io.BytesIO()
    enrich_stream(io.BytesIO(gzip.compress(records_text)), sink, ruleset, OfflineGeo().country)
    return gzip.decompress(sink.getvalue()).splitlines()


def test_the_enriched_copy_is_the_text_with_the_fields_after_it(ruleset: RuleSet) -> None:
    plain = b'{"eventVersion":"1.09","eventName":"ListBuckets","n":123456789012345678901234567890}'
    flagged = orjson.dumps(
        {
            "eventVersion": "1.09",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "sourceIPAddress": "81.2.69.142",
        }
    )
    lines = enrich(b'{"Records":[' + plain + b"," + flagged + b"," + plain + b"]}", ruleset)
    assert lines[0] == plain  # nothing added: the bytes as they were, the big integer exact
    assert lines[1].startswith(flagged[:-1] + b',"xpriority":"CRITICAL","xrules":["')
    assert orjson.loads(lines[1])["xcountry_code"] == "GB"
    assert "cloudtrail-logging-stopped" in orjson.loads(lines[1])["xrules"]


def test_a_record_enriched_before_is_serialized_with_fresh_fields(ruleset: RuleSet) -> None:
    old = {"eventVersion": "1", "eventName": "ListBuckets", "xrules": ["gone"], "xpriority": "LOW"}
    records = [old, old, {}, {"eventVersion": "1"}]
    lines = enrich(orjson.dumps({"Records": records}), ruleset)
    assert [orjson.loads(line) for line in lines] == [
        {"eventVersion": "1", "eventName": "ListBuckets"},
        {"eventVersion": "1", "eventName": "ListBuckets"},
        {},
        {"eventVersion": "1"},
    ]
    assert all(line.count(b'"xrules"') == 0 for line in lines)


def test_enriched_lines_equal_the_serialized_ones_on_real_records(
    shared_data: Path, ruleset: RuleSet
) -> None:
    originals = [
        orjson.loads(line)
        for line in (shared_data / "cloudtrail" / "events.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    lines = enrich(orjson.dumps({"Records": originals}), ruleset)
    assert len(lines) == len(originals)
    serialized = [orjson.dumps(record) for record in originals]
    same_start = sum(
        line.startswith(text[:-1]) for line, text in zip(lines, serialized, strict=True)
    )
    assert same_start == len(lines)
    for line, original in zip(lines, originals, strict=True):
        enriched = orjson.loads(line)
        assert {k: v for k, v in enriched.items() if not k.startswith("x")} == original

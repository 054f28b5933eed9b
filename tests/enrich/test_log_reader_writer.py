"""The streaming CloudTrail log reader and the enriched JSON-lines writer."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from umbrellabot.enrich.reader import LogFormatError, is_gzip, read_records
from umbrellabot.enrich.writer import EnrichedWriter


def read(data: bytes, chunk_size: int = 1 << 20) -> list[dict[str, Any]]:
    return list(read_records(io.BytesIO(data), chunk_size=chunk_size))


def document(records: list[Any]) -> bytes:
    return orjson.dumps({"Records": records})


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": f"user{i}"},
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "sourceIPAddress": "10.0.0.1",
        "resources": [{"ARN": f"arn:aws:s3:::bucket/{i}"}, {"ARN": "arn:aws:s3:::bucket"}],
        **extra,
    }


CHUNK_SIZES = [7, 1000, 65536, 1 << 20]


@pytest.fixture(scope="module")
def log_files(shared_data: Path) -> list[Path]:
    logs = shared_data / "cloudtrail" / "s3-layout"
    files = sorted(logs.rglob("*.json.gz"))
    assert files, f"no CloudTrail logs under {logs}"
    return files


# -- real files --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_real_files_round_trip(log_files: list[Path], chunk_size: int) -> None:
    files = log_files[:3] if chunk_size < 100 else log_files  # 7-byte reads are slow
    for path in files:
        raw = path.read_bytes()
        expected = orjson.loads(gzip.decompress(raw))["Records"]
        with path.open("rb") as handle:
            assert list(read_records(handle, chunk_size=chunk_size)) == expected, path.name


@pytest.mark.parametrize("chunk_size", [7, 4096, 1 << 20])
def test_real_file_plain_json(log_files: list[Path], chunk_size: int) -> None:
    plain = gzip.decompress(log_files[-1].read_bytes())
    assert read(plain, chunk_size) == orjson.loads(plain)["Records"]


def test_real_files_count(log_files: list[Path]) -> None:
    total = sum(len(read(path.read_bytes())) for path in log_files)
    assert total > 1000


# -- layouts -----------------------------------------------------------------------------------


RECORDS = [
    record(0, userAgent='aws-cli/2.0 },{"eventVersion":"1.0"} [x]'),
    record(
        1,
        requestParameters={
            "policyDocument": '{"Version":"2012-10-17","Statement":'
            '[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        },
    ),
    record(2, sourceIPAddress="2001:db8:85a3::8a2e:370:7334"),
    record(3, userAgent='Zürich 東京 🚀 \u2028 \\ " }', errorMessage="naïve ☃"),
    record(4, requestParameters={"items": [{"eventVersion": "nested"}, {"eventVersion": "x"}]}),
    record(5, responseElements=None, additionalEventData={"a": [[], {}, [{}], {"b": [1, 2.5]}]}),
    {"notEventVersionFirst": True, "nested": {"list": [{"}": "{"}, {"]": "["}]}},
    record(7, requestParameters={"s": "\\", "t": '\\\\"}', "u": "\\u0041\n\t"}),
]


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("options", [0, orjson.OPT_INDENT_2], ids=["compact", "pretty"])
def test_layouts_and_awkward_contents(chunk_size: int, options: int) -> None:
    data = orjson.dumps({"Records": RECORDS}, option=options)
    assert read(data, chunk_size) == RECORDS
    assert read(gzip.compress(data), chunk_size) == RECORDS


@pytest.mark.parametrize("chunk_size", [3, 1 << 20])
def test_any_whitespace(chunk_size: int) -> None:
    lines = [orjson.dumps(r) for r in RECORDS]
    data = (
        b'\xef\xbb\xbf \r\n{\t"Records" \n:\r [\n  '
        + b" \n ,\r\n\t ".join(lines)
        + b" \n] \t}\r\n \n"
    )
    assert read(data, chunk_size) == RECORDS
    assert read(json.dumps({"Records": RECORDS}, indent="\t").encode(), chunk_size) == RECORDS


@pytest.mark.parametrize("chunk_size", [5, 1 << 20])
def test_other_keys(chunk_size: int) -> None:
    before = b'{"awsAccountId":"1","Records":[' + orjson.dumps(RECORDS[0]) + b"]}"
    assert read(before, chunk_size) == [RECORDS[0]]
    after = b'{"Records":[' + orjson.dumps(RECORDS[0]) + b'],"x":{"Records?":[1]}}'
    assert read(after, chunk_size) == [RECORDS[0]]


def test_empty_list() -> None:
    assert read(b'{"Records":[]}') == []
    assert read(gzip.compress(b' { "Records" : [ ] } ')) == []


def test_many_records_and_multi_member_gzip() -> None:
    records = [record(i) for i in range(3000)]
    data = document(records)
    assert read(data) == records
    assert read(data, 4096) == records
    half = len(data) // 2
    members = gzip.compress(data[:half]) + gzip.compress(data[half:]) + b"\0\0\0"
    assert read(members, 10_000) == records


def test_large_values_fall_back_to_the_stdlib() -> None:
    data = b'{"Records":[{"a":1},{"big":1e400,"s":"\\ud800"},{"n":123456789012345678901}]}'
    got = read(data)
    assert got[1] == {"big": float("inf"), "s": "\ud800"}
    assert got[2] == {"n": 123456789012345678901.0}  # as orjson reads it: a float
    many = [orjson.dumps(record(i)) for i in range(2000)]
    many[700] = b'{"eventVersion":"1.08","big":-1e999}'
    got = read(b'{"Records":[' + b",".join(many) + b"]}", 8192)
    assert len(got) == 2000
    assert got[700]["big"] == float("-inf")
    assert got[1999] == record(1999)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("chunk_size", [4096, 1 << 20])
def test_very_large_record_is_linear(chunk_size: int) -> None:
    """Several MB in one record, with 20,000 nested `},{` and brace-laden strings."""
    items = [
        {
            "eventVersion": f"{i}",
            "instanceId": f"i-{i:08x}",
            "arn": f"arn:aws:ec2:us-east-1:111122223333:instance/i-{i:08x}",
            "tags": [{"k": '}],{["', "v": i}, {"k": "Name", "v": "web-server-é"}],
        }
        for i in range(20_000)
    ]
    giant = record(-1, requestParameters={"instancesSet": {"items": items}})
    records = [record(i) for i in range(200)] + [giant] + [record(i) for i in range(200)]
    data = document(records)
    assert len(data) > 3_000_000
    assert read(data, chunk_size) == records


# -- the property ------------------------------------------------------------------------------

KEYS = st.sampled_from(["eventVersion", "a", "}", "{", "]", "},{", '"', "\\", "é", "x" * 40])
TEXT = st.text(alphabet=st.sampled_from(list('{}[],:"\\ \n\tabcé☃🚀\u2028')), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | TEXT, inner, max_size=4),
    max_leaves=12,
)
RECORD = st.dictionaries(KEYS | TEXT, VALUES, max_size=5)
SPACE = st.sampled_from([b"", b" ", b"\n", b"\r\n\t  "])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(RECORD, max_size=8),
    chunk_size=st.integers(min_value=1, max_value=300),
    space=SPACE,
)
def test_property_matches_whole_document_parse(
    records: list[dict[str, Any]], chunk_size: int, space: bytes
) -> None:
    """Generating examples is what costs here, so each one is read several ways."""
    lines = [orjson.dumps(r) for r in records]
    comma = space + b"," + space
    data = b"{" + space + b'"Records":' + space + b"[" + space + comma.join(lines)
    data += space + b"]" + space + b"}" + space
    expected = orjson.loads(data)["Records"]
    packed = gzip.compress(data, compresslevel=1)
    for size in (chunk_size, 1, 1 << 20):
        assert read(data, size) == expected
        assert read(packed, size) == expected


# -- errors ------------------------------------------------------------------------------------

R = orjson.dumps(record(0))
ERRORS = [
    (b"", "empty file"),
    (b"hello world", "not gzip or JSON"),
    (b"\x00\x01\x02\x03", "not gzip or JSON"),
    (b"  \n ", "not gzip or JSON"),
    (b"[1, 2", "not gzip or JSON"),
    (b"[1, 2]", "no Records list"),
    (b'{"records":[]}', "no Records list"),
    (b'{"Records":{}}', "Records is not a list"),
    (b'{"Records":null}', "Records is not a list"),
    (b'{"Records":[1]}', "record 0 is not an object"),
    (b'{"Records":[' + R + b',"x"]}', "record 1 is not an object"),
    (b'{"Records":[' + R + b"," + R + b",[]," + R + b"]}", "record 2 is not an object"),
    (b'{"x":0,"Records":[' + R + b",3]}", "record 1 is not an object"),
    (b'{"Records":[' + R + b"]}xyz", "not JSON: trailing data after the document at byte "),
    (b'{"Records":[' + R + b"]} {}", "not JSON: trailing data after the document at byte "),
    (b'{"Records":[' + R + b",]}", "not JSON: trailing comma at byte "),
    (b'{"Records":[' + R + b" " + R + b"]}", "not JSON: expected ',' or ']' after record 0"),
    (b'{"Records":[' + R + b',{"a":tru}]}', "not JSON: invalid literal"),
    (b'{"Records":[{"a":NaN}]}', "not JSON: unexpected character"),
    (b'{"Records":[{"a":[1}]}', "not JSON: "),
    (b'{"Records":[' + R + b"]", "truncated JSON"),
    (b'{"Records":[' + R + b"," + R[:30], "truncated JSON"),
    (b'{"Records":[' + R[:-1], "truncated JSON"),
    (b'{"Rec', "truncated JSON"),
    (b'{"Records":[{"a":"\xff"}]}', "invalid UTF-8 at byte 18"),
    (b'{"Records":[{"a":"\xed\xa0\x80"}]}', "invalid UTF-8 at byte 18"),
    (b'{"Records":[' + R + b'],"Records":[]}', "more than one Records list"),
]


@pytest.mark.parametrize("chunk_size", [3, 1 << 20])
@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_errors(data: bytes, message: str, chunk_size: int) -> None:
    with pytest.raises(LogFormatError) as caught:
        read(data, chunk_size)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_error_positions() -> None:
    data = b'{"Records":[' + R + b',{"a":tru}]}'
    with pytest.raises(LogFormatError, match=rf"at byte {len(R) + 18}$"):
        read(data)
    with pytest.raises(
        LogFormatError, match=rf"trailing data after the document at byte {len(R) + 14}"
    ):
        read(b'{"Records":[' + R + b"]}xyz", 5)


def test_records_before_an_error_are_yielded() -> None:
    records = [record(i) for i in range(500)]
    data = document(records)[:-2] + b',"oops"]}'
    got: list[dict[str, Any]] = []
    with pytest.raises(LogFormatError, match="record 500 is not an object"):
        got.extend(read_records(io.BytesIO(data)))
    assert got == records


GOOD = gzip.compress(document([record(0), record(1)]))


def flipped(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0xFF
    return bytes(changed)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD[:-4], "truncated gzip"),
        (GOOD[: len(GOOD) // 2], "truncated gzip"),
        (GOOD[:2], "truncated gzip"),
        (flipped(GOOD, -8), "corrupt gzip: incorrect checksum"),  # CRC
        (flipped(GOOD, -2), "corrupt gzip: incorrect checksum"),  # length
        (GOOD[:2] + b"\x07" + GOOD[3:], "corrupt gzip: gzip/zlib wrapper specifies unsupported"),
        (GOOD + b"trailing", "corrupt gzip: trailing garbage after the gzip data"),
        (GOOD + b"\0\0\x01", "corrupt gzip: trailing garbage after the gzip data"),
        (gzip.compress(b"plain text"), "not JSON: unexpected byte 0x70 at byte 0"),
        (gzip.compress(b"{not json"), "not JSON: "),
        (gzip.compress(b""), "truncated JSON"),
        (gzip.compress(b'{"Records":[{"a":1}'), "truncated JSON"),
        (GOOD + GOOD, "not JSON: trailing data after the document"),
    ],
)
def test_gzip_errors(data: bytes, message: str) -> None:
    for chunk_size in (5, 1 << 20):
        with pytest.raises(LogFormatError) as caught:
            read(data, chunk_size)
        assert str(caught.value).startswith(message)


def test_corrupt_deflate_data() -> None:
    raw = orjson.dumps({"Records": [record(i) for i in range(200)]})
    data = gzip.compress(raw)
    with pytest.raises(LogFormatError, match=r"^corrupt gzip: "):
        read(data[:100] + bytes(range(256)) * 4 + data[100:])


class Trickle(io.RawIOBase):
    """A raw stream that returns at most `size` bytes per read, as sockets may."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.offset, self.size = data, 0, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        take = self.size if n < 0 else min(n, self.size)
        piece = self.data[self.offset : self.offset + take]
        self.offset += len(piece)
        return piece


def test_short_reads() -> None:
    data = document(RECORDS)
    assert list(read_records(Trickle(gzip.compress(data), 1), chunk_size=64)) == RECORDS  # type: ignore[arg-type]
    assert list(read_records(Trickle(data, 1))) == RECORDS  # type: ignore[arg-type]


def test_is_gzip_and_chunk_size() -> None:
    assert is_gzip(b"\x1f\x8b\x08\x00")
    assert not is_gzip(b"\x1f")
    assert not is_gzip(b'{"Records":[]}')
    with pytest.raises(ValueError, match="chunk_size"):
        read(b"{}", 0)


# -- the writer --------------------------------------------------------------------------------


def test_writer_round_trip() -> None:
    records = [*RECORDS, *(record(i) for i in range(3000))]
    sink = io.BytesIO()
    with EnrichedWriter(sink) as writer:
        for item in records:
            writer.write(item)
    assert not sink.closed
    raw = sink.getvalue()
    assert raw[:3] == b"\x1f\x8b\x08"
    text = gzip.decompress(raw)
    lines = text.split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line) for line in lines[:-1]] == records
    assert writer.records == len(records)
    assert writer.bytes_in == len(text)
    assert writer.bytes_out == len(raw)
    assert "Zürich 東京 🚀".encode() in text  # non-ASCII kept as is, not escaped
    assert b"\\u00fc" not in text


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_writer_levels(level: int) -> None:
    sink = io.BytesIO()
    writer = EnrichedWriter(sink, compresslevel=level)
    writer.write({"a": "b"})
    writer.close()
    writer.close()  # idempotent
    assert gzip.decompress(sink.getvalue()) == b'{"a":"b"}\n'
    with pytest.raises(ValueError, match="closed"):
        writer.write({"a": "c"})


def test_writer_rejects_bad_level() -> None:
    with pytest.raises(ValueError, match="compresslevel"):
        EnrichedWriter(io.BytesIO(), compresslevel=9)
    assert EnrichedWriter.DEFAULT_LEVEL in (1, 2)


def test_writer_empty_and_abandoned() -> None:
    sink = io.BytesIO()
    with EnrichedWriter(sink) as writer:
        pass
    assert gzip.decompress(sink.getvalue()) == b""
    assert writer.records == writer.bytes_in == 0
    sink = io.BytesIO()
    with pytest.raises(RuntimeError), EnrichedWriter(sink) as writer:
        writer.write({"a": 1})
        raise RuntimeError("boom")
    assert sink.getvalue() == b""  # abandoned: nothing written, visibly incomplete


def test_writer_values_orjson_cannot_write() -> None:
    sink = io.BytesIO()
    with EnrichedWriter(sink) as writer:
        writer.write({"n": 2**70, "s": "é"})
        writer.write({"s": "\ud800"})
    assert gzip.decompress(sink.getvalue()) == (
        '{"n":1180591620717411303424,"s":"é"}\n{"s":"\\ud800"}\n'.encode()
    )
    with pytest.raises(TypeError):
        EnrichedWriter(io.BytesIO()).write({"x": object()})


def test_read_then_write(log_files: list[Path]) -> None:
    raw = log_files[0].read_bytes()
    sink = io.BytesIO()
    with EnrichedWriter(sink) as writer, io.BytesIO(raw) as source:
        for item in read_records(source):
            writer.write(item)
    expected = orjson.loads(gzip.decompress(raw))["Records"]
    lines = gzip.decompress(sink.getvalue()).splitlines()
    assert [orjson.loads(line) for line in lines] == expected

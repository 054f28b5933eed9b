"""Reading CloudTrail log files: `read_records` yields the records of one log file (gzip or plain
JSON) from a binary file object, holding only a bounded window of the decompressed text (see
`splitter.py` for how records are cut out of it). Nothing here opens a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO, Final, cast

from isal import igzip_lib

from umbrellabot.enrich.document_ends import Entry, TextedEntry
from umbrellabot.enrich.oversize import OversizeRecord
from umbrellabot.enrich.splitter import RecordSplitter
from umbrellabot.enrich.text_window import LogFormatError

__all__ = [
    "Entry",
    "LogFormatError",
    "OversizeRecord",
    "TextedEntry",
    "is_gzip",
    "read_entries",
    "read_records",
    "read_texted",
]

GZIP_MAGIC: Final = b"\x1f\x8b"
_ERROR_CODE: Final = re.compile(r"^Error -?\d+:? *")
# isal's stubs declare IsalError as an instance of Exception rather than a class.
_IsalError: Final = cast("type[Exception]", igzip_lib.IsalError)


def is_gzip(head: bytes) -> bool:
    """Whether `head`, the first bytes of a file, starts with the gzip magic number."""
    return head[:2] == GZIP_MAGIC


def read_records(
    raw: BinaryIO, *, chunk_size: int = 1 << 20, max_record_bytes: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each record of a CloudTrail log file read from `raw`, a binary file object.

    The file is gzip (recognised by its magic number; several members are fine) or plain JSON.
    `chunk_size` is how many bytes are read from `raw` at a time, and at most how many
    decompressed bytes are produced at a time. The file is read to its end, so a damaged gzip
    trailer or trailing garbage raises after the records before it were yielded.
    Raises LogFormatError. Integers beyond 64 bits become floats, as orjson parses them.
    A record over `max_record_bytes` is skipped, never held whole (`read_entries` yields it).
    """
    for entry, _ in read_texted(raw, chunk_size=chunk_size, max_record_bytes=max_record_bytes):
        if not isinstance(entry, OversizeRecord):
            yield entry


def read_entries(
    raw: BinaryIO, *, chunk_size: int = 1 << 20, max_record_bytes: int | None = None
) -> Iterator[Entry]:
    """Like `read_records`, but a record over `max_record_bytes` comes as an OversizeRecord
    whose text is streamed (oversize.py)."""
    for entry, _ in read_texted(raw, chunk_size=chunk_size, max_record_bytes=max_record_bytes):
        yield entry


def read_texted(
    raw: BinaryIO, *, chunk_size: int = 1 << 20, max_record_bytes: int | None = None
) -> Iterator[TextedEntry]:
    """Like `read_entries`, each entry with its text as it is in the file when the splitter
    cut it out on its own (a compact record: `{...}`, no newline), else None."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    head = b""
    while len(head) < 2:
        more = raw.read(chunk_size)
        if not more:
            break
        head += more
    if not head:
        raise LogFormatError("empty file")
    gzipped = is_gzip(head)
    pieces = _gunzip(raw, head, chunk_size) if gzipped else _plain(raw, head, chunk_size)
    yield from RecordSplitter(pieces, chunk_size, gzipped, max_record_bytes).start()


def _plain(raw: BinaryIO, head: bytes, chunk_size: int) -> Iterator[bytes]:
    yield head
    while piece := raw.read(chunk_size):
        yield piece


def _gunzip(raw: BinaryIO, head: bytes, chunk_size: int) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream, at most `chunk_size` bytes at a time."""
    data = head
    while True:
        decompressor = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
        while not decompressor.eof:
            if not data and decompressor.needs_input:
                data = raw.read(chunk_size)
                if not data:
                    raise LogFormatError("truncated gzip")
            try:
                out = decompressor.decompress(data, chunk_size)
            except _IsalError as err:
                reason = _ERROR_CODE.sub("", str(err)).strip().rstrip(".") or "bad data"
                raise LogFormatError(f"corrupt gzip: {reason[:1].lower()}{reason[1:]}") from None
            data = b""
            if out:
                yield out
        # Another member may follow; zero padding after a member is allowed, as gzip allows it.
        data = decompressor.unused_data
        while True:
            data = data.lstrip(b"\0")
            if len(data) >= 2:
                break
            more = raw.read(chunk_size)
            if not more:
                if data:
                    raise LogFormatError("corrupt gzip: trailing garbage after the gzip data")
                return
            data += more
        if not is_gzip(data):
            raise LogFormatError("corrupt gzip: trailing garbage after the gzip data")

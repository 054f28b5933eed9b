"""Writing enriched records: gzip-compressed JSON lines (one object per line, UTF-8), the layout
Athena's JSON SerDe reads. Writes to a file object handed in; nothing here opens a path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any, BinaryIO, Final

import orjson
from isal import isal_zlib


class EnrichedWriter:
    """Writes records as gzip-compressed JSON lines to `sink`.

    One object per line, UTF-8 with non-ASCII characters as they are, each line ending in a
    newline: the layout Athena (Hive JSON SerDe) reads. The gzip stream is standard (one member,
    made by ISA-L). Use as a context manager or call close(), which finishes the gzip stream but
    does not close `sink`; leaving the context with an exception abandons the stream (nothing
    more is written, so the output is visibly incomplete). `records` counts the records written
    and `bytes_in` their uncompressed bytes; `bytes_out` counts the bytes written to `sink`.
    """

    # ISA-L level 1, measured on CloudTrail JSON lines: as fast as level 0 with 14 % less output;
    # level 2 saves 1.5 % more for 5 % more time, level 3 takes twice as long.
    DEFAULT_LEVEL: Final = 1
    FLUSH_BYTES: Final = 1 << 18  # uncompressed bytes gathered before each compress call

    def __init__(self, sink: BinaryIO, *, compresslevel: int = DEFAULT_LEVEL) -> None:
        if not isal_zlib.ISAL_BEST_SPEED <= compresslevel <= isal_zlib.ISAL_BEST_COMPRESSION:
            raise ValueError(
                f"compresslevel must be {isal_zlib.ISAL_BEST_SPEED}"
                f"..{isal_zlib.ISAL_BEST_COMPRESSION}, not {compresslevel}"
            )
        self._sink = sink
        self._compressor = isal_zlib.compressobj(compresslevel, isal_zlib.DEFLATED, 31)
        self._lines: list[bytes | memoryview] = []
        self._flush_at = self.FLUSH_BYTES
        self._closed = False
        self.records = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line."""
        if self._closed:
            raise ValueError("write to a closed EnrichedWriter")
        try:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            line = _stdlib_line(record)
        self._lines.append(line)
        self.records += 1
        self.bytes_in += len(line)
        if self.bytes_in >= self._flush_at:
            self._compress()

    def write_text(self, text: bytes, added: bytes = b"") -> None:
        """Append one record given as its compact JSON text (`{...}`, no line break), with
        `added`, the text of more fields (`,"key":value...`), inserted before its last `}`."""
        if self._closed:
            raise ValueError("write to a closed EnrichedWriter")
        lines = self._lines
        if added:
            lines.append(memoryview(text)[:-1])
            lines.append(added)
            lines.append(b"}\n")
        else:
            lines.append(text)
            lines.append(b"\n")
        self.records += 1
        self.bytes_in += len(text) + len(added) + 1
        if self.bytes_in >= self._flush_at:
            self._compress()

    def write_raw(self, pieces: Iterable[bytes], suffix: bytes) -> None:
        """Append one line made of `pieces` (a record's text, unparsed, newline-free) and
        `suffix`, compressed as it comes: a huge record is never held whole."""
        if self._closed:
            raise ValueError("write to a closed EnrichedWriter")
        self._compress()
        for piece in pieces:
            self.bytes_in += len(piece)
            self._emit(self._compressor.compress(piece))
        self._lines.append(suffix + b"\n")
        self.bytes_in += len(suffix) + 1
        self.records += 1
        self._compress()

    def _compress(self) -> None:
        data = b"".join(self._lines)
        self._lines.clear()
        self._flush_at = self.bytes_in + self.FLUSH_BYTES
        self._emit(self._compressor.compress(data))

    def _emit(self, data: bytes) -> None:
        if data:
            self._sink.write(data)
            self.bytes_out += len(data)

    def close(self) -> None:
        """Finish the gzip stream (idempotent); `sink` stays open."""
        if self._closed:
            return
        self._closed = True
        self._compress()
        self._emit(self._compressor.flush())

    def __enter__(self) -> EnrichedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._lines.clear()


def _stdlib_line(record: dict[str, Any]) -> bytes:
    """A line for a record orjson cannot write: integers beyond 64 bits, lone surrogates (both
    can come from the stdlib fallback of the reader). Other failures propagate as TypeError."""
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: keep it as an escape
        return json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n"

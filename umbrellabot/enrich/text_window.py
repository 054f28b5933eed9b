"""The decompressed text of one log file, read through a bounded window, and records cut out of
it one at a time (the careful path; `splitter.py` cuts them in batches).

One record: orjson is given the text from the record's start to a cut after a candidate end, and
either parses it, or says where the record ended ("content after document"), or that the cut is
inside the record, which then moves at least twice as far; so a record with thousands of nested
`},{` costs linear time. A record orjson refuses (a number beyond a double, a lone surrogate
escape) is delimited by an exact, string-aware bracket scanner and read by the stdlib `json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

import orjson

WS_RUN: Final = re.compile(rb"[ \t\n\r]*")
WHITESPACE: Final = frozenset(b" \t\n\r")
# A candidate end for one record: `}` ws followed by `,` or `]`.
RECORD_END: Final = re.compile(rb"\}[ \t\n\r]*[,\]]")
# The exact scanner's tokens: a whole string (group 1 is the closing quote, absent when the
# string runs past the end of the window) or one bracket.
TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(")?|[{}\[\]]', re.DOTALL)

# What the window may hold past a record before its end is known (whitespace, `,`, the next
# record's first key); a record that fits but is over the limit is caught once measured.
LOOKAHEAD: Final = 256
OPEN_CURLY: Final = 0x7B
CLOSE_CURLY: Final = 0x7D
OPEN_SQUARE: Final = 0x5B
QUOTE: Final = 0x22


class LogFormatError(ValueError):
    """A log file that cannot be read; str() is a short human reason, such as 'not gzip or JSON',
    'corrupt gzip: incorrect checksum found', 'truncated gzip', 'not JSON: unexpected end of data
    at byte 812', 'truncated JSON', 'no Records list', 'Records is not a list' or
    'record 12 is not an object' (12 is the index in the Records list, from 0)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(data: bytes | bytearray | memoryview, offset: int) -> Any:
    """Parse one JSON text, orjson first, then the stdlib for what orjson refuses but JSON allows
    (numbers beyond a double, lone surrogate escapes). `offset` is where `data` starts in the
    decompressed file, for error messages."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        message, position = err.msg, err.pos
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LogFormatError(f"invalid UTF-8 at byte {offset + err.start}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    at = offset + len(text[:position].encode("utf-8"))
    if at >= offset + len(raw) and message.startswith(("unexpected end", "EOF")):
        raise LogFormatError("truncated JSON")
    raise LogFormatError(f"not JSON: {message} at byte {at}")


class RecordTooLarge(Exception):
    """The record being read runs past the window's `max_record` bytes (raised by fill())."""


class TextWindow:
    """A bounded window over the decompressed text of one log file.

    `buf` holds the unconsumed tail of the text read so far (plus one consumed byte before
    `pos`, which a batch parse overwrites with `[`); `base` is the offset of buf[0] in the file.
    """

    def __init__(
        self,
        pieces: Iterator[bytes],
        chunk_size: int,
        gzipped: bool,
        max_record: int | None = None,
    ) -> None:
        self.pieces = pieces
        self.chunk_size = chunk_size
        self.gzipped = gzipped
        self.buf = bytearray()
        self.pos = 0
        self.base = 0
        self.eof = False
        self.limit = max(4 * chunk_size, 1 << 22)  # window size beyond which batches stop growing
        self.walk_after = max(2 * chunk_size, 1 << 20)  # window size to look past the marker at
        self.marker: bytes | None = None
        self.marker_known = False
        self.careful = 0  # how many more batch boundaries are to be checked by brace counts
        self.trouble = -1  # file offset of the last error orjson reported inside a batch
        self.slow_until = -1  # file offset up to which records are taken one at a time
        self.uncut = -1  # file offset of a record that is not to be cut out on its own
        self.max_record = max_record  # bytes one record may take in the window (None: any)
        self.reading_record = False  # a record starts at self.pos and has not ended in buf

    # -- the window --------------------------------------------------------------------------

    def fill(self, wanted: int = 1) -> int:
        """Read at least `wanted` more bytes (fewer at the end); drop consumed bytes but one.
        Returns how far the bytes in `buf` moved left, for the caller's indices."""
        if self.eof:
            return 0
        if (
            self.reading_record
            and self.max_record is not None
            and len(self.buf) - self.pos > self.max_record + LOOKAHEAD
        ):
            raise RecordTooLarge
        shift = self.pos - 1 if self.pos > 1 else 0
        if shift:
            del self.buf[:shift]
            self.pos -= shift
            self.base += shift
        got = 0
        while got < wanted:
            piece = next(self.pieces, b"")
            if not piece:
                self.eof = True
                break
            self.buf += piece
            got += len(piece)
        return shift

    def skip_ws(self, i: int) -> int:
        """The index of the first non-whitespace byte at or after `i`; self.pos is kept where
        the caller has it, so `i` is adjusted if the window moves. -1 at the end of the file."""
        while True:
            match = WS_RUN.match(self.buf, i)
            assert match is not None
            i = match.end()
            if i < len(self.buf):
                return i
            if self.eof:
                return -1
            i -= self.fill()

    def error_at(self, i: int) -> int:
        return self.base + i

    # -- one record at a time ----------------------------------------------------------------

    def one_record(self) -> tuple[dict[str, Any], int]:
        """The record starting at self.pos (a `{`) and the index just after it.

        orjson is given the text from the record's start to a cut after a candidate end: it
        parses the record exactly when the cut is its end; when the cut lies beyond, it reports
        content after the document, at the record's end; when the cut lies inside the record, it
        reports the end of the data, and the cut moves at least twice as far (linear time)."""
        buf = self.buf
        start = self.pos
        reach = 1
        while True:
            cut, start = self.cut_after(start, start + reach)
            view = memoryview(buf)
            segment = view[start:cut]
            try:
                record: dict[str, Any] = orjson.loads(segment)
            except orjson.JSONDecodeError as err:
                doc, position = err.doc, err.pos
            else:
                return record, cut
            finally:
                segment.release()
                view.release()
            if doc and not doc.isascii():
                position = len(doc[:position].encode("utf-8", "surrogatepass"))
            if not doc or start + position < cut:
                break  # an error inside: content after the record, or a record orjson refuses
            if cut == len(buf) and self.eof:
                raise LogFormatError("truncated JSON")
            reach = 2 * (cut - start)
        if doc:
            end = start + position
            while buf[end - 1] in WHITESPACE:
                end -= 1
            view = memoryview(buf)
            segment = view[start:end]
            try:
                record = orjson.loads(segment)
            except orjson.JSONDecodeError:
                pass
            else:
                return record, end
            finally:
                segment.release()
                view.release()
        self.pos = start
        return self.exact_record()

    def cut_after(self, start: int, low: int) -> tuple[int, int]:
        """The index just after the first candidate record end at or after `low` (reading on
        as needed; the end of the text at the end of the file), and `start` as moved."""
        buf = self.buf
        scan = low - 1
        while True:
            match = RECORD_END.search(buf, scan)
            if match is not None:
                return match.start() + 1, start
            if self.eof:
                return len(buf), start
            # A later match can only start at the last `}` seen so far.
            last = buf.rfind(b"}", scan)
            scan = last if last >= 0 else len(buf)
            shift = self.fill(max(self.chunk_size, len(buf) - start))
            start, scan = start - shift, scan - shift

    def exact_record(self) -> tuple[dict[str, Any], int]:
        """The record at self.pos, its end found by a string-aware bracket scanner."""
        buf = self.buf
        start = self.pos
        stack = bytearray()
        i = start
        while True:
            match = TOKEN.search(buf, i)
            if match is None or (buf[match.start()] == QUOTE and match.end(1) < 0):
                # The window ends inside a string or between tokens: read on.
                i = len(buf) if match is None else match.start()
                if self.eof:
                    raise LogFormatError("truncated JSON")
                shift = self.fill(max(self.chunk_size, len(buf) - start))
                start, i = start - shift, i - shift
                continue
            i = match.end()
            byte = buf[match.start()]
            if byte == QUOTE:
                continue
            if byte in (OPEN_CURLY, OPEN_SQUARE):
                stack.append(byte)
                continue
            opener = OPEN_CURLY if byte == CLOSE_CURLY else OPEN_SQUARE
            if not stack or stack[-1] != opener:
                # Mismatched brackets: let the parser say what is wrong, and where.
                loads_json(memoryview(buf)[start:i], self.error_at(start))
                raise LogFormatError(f"not JSON: unbalanced brackets at byte {self.error_at(i)}")
            stack.pop()
            if not stack:
                record = loads_json(memoryview(buf)[start:i], self.error_at(start))
                return record, i

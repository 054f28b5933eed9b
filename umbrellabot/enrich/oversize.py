"""A record too large to parse (over MAX_RECORD_BYTES): its text streamed through unparsed.

A 1.5 MB gzip can hold a 1.5 GB userAgent. Such a record is never held whole: a string-aware
bracket scanner finds its end while its text is handed on in window-sized pieces, and only its
head and tail (a few KiB, where CloudTrail puts eventTime, eventName, eventSource, awsRegion,
sourceIPAddress first and eventID, recipientAccountId last) are kept, to name it in an alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from umbrellabot.enrich.text_window import (
    CLOSE_CURLY,
    OPEN_CURLY,
    OPEN_SQUARE,
    LogFormatError,
    TextWindow,
)

KEEP_BYTES: Final = 1 << 16  # of the head and of the tail
OUTSIDE: Final = re.compile(rb'["{}\[\]]')  # what matters outside a string
INSIDE: Final = re.compile(rb'["\\]')  # what ends a string, or escapes its next byte
BACKSLASH: Final = 0x5C
QUOTE: Final = 0x22
NEWLINES: Final = bytes.maketrans(b"\r\n", b"  ")  # raw newlines are whitespace outside strings
HEAD_FIELDS: Final = ("eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress")
TAIL_FIELDS: Final = ("eventID", "recipientAccountId", "eventType")
_SHORT_STRING: Final = rb'"%s"[ \t\r\n]*:[ \t\r\n]*"([^"\\]{1,256})"'


@dataclass
class OversizeRecord:
    """A record of the Records list left unparsed. `pieces` is its text without the closing
    `}` (raw newlines turned to spaces, so it stays one line); it must be consumed before the
    next record is read. `size` and `facts` are known once it has been."""

    index: int
    pieces: Iterator[bytes]
    size: int = 0
    facts: dict[str, str] = field(default_factory=dict)


def record_end(window: TextWindow) -> int | None:
    """Where the record at window.pos ends in the window (the index after its `}`), by an
    exact scan of what is there; None when it runs past the window. Raises LogFormatError."""
    buf = window.buf
    depth = 0
    i = window.pos
    while True:
        match = OUTSIDE.search(buf, i)
        if match is None:
            return None
        i = match.end()
        byte = buf[match.start()]
        if byte == QUOTE:
            while True:
                inside = INSIDE.search(buf, i)
                if inside is None:
                    return None
                i = inside.end()
                if buf[inside.start()] != BACKSLASH:
                    break
                i += 1
        elif byte in (OPEN_CURLY, OPEN_SQUARE):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return i
            if depth < 0:
                raise LogFormatError(
                    f"not JSON: unbalanced brackets at byte {window.error_at(match.start())}"
                )


def stream_record(window: TextWindow, record: OversizeRecord) -> Iterator[bytes]:
    """The text of the record at window.pos (a `{`), piece by piece; afterwards window.pos is
    just past it and `record.size`/`record.facts` are set. Raises LogFormatError."""
    window.reading_record = False  # from here on the window holds a chunk, not the record
    buf = window.buf
    start = window.pos
    head = bytearray()
    tail = bytearray()
    stack = bytearray()
    in_string = False
    i = start
    while True:
        if i >= len(buf):  # (past it by one: the escaped byte is the next chunk's first)
            if window.eof:
                raise LogFormatError("truncated JSON")
            end = len(buf)
            piece = bytes(buf[start:end])
            _keep(head, tail, piece)
            record.size += len(piece)
            yield piece.translate(NEWLINES)
            window.pos = end
            shift = window.fill(window.chunk_size)
            start, i = end - shift, i - shift
            continue
        if in_string:
            match = INSIDE.search(buf, i)
            if match is None:
                i = len(buf)
                continue
            i = match.end()
            if buf[match.start()] == BACKSLASH:
                i += 1  # the escaped byte, whatever it is
            else:
                in_string = False
            continue
        match = OUTSIDE.search(buf, i)
        if match is None:
            i = len(buf)
            continue
        i = match.end()
        byte = buf[match.start()]
        if byte == QUOTE:
            in_string = True
        elif byte in (OPEN_CURLY, OPEN_SQUARE):
            stack.append(byte)
        elif not stack or stack.pop() != (OPEN_CURLY if byte == CLOSE_CURLY else OPEN_SQUARE):
            raise LogFormatError(
                f"not JSON: unbalanced brackets at byte {window.error_at(match.start())}"
            )
        elif not stack:  # the record's own `}`
            piece = bytes(buf[start : match.start()])
            _keep(head, tail, piece)
            record.size += len(piece) + 1
            window.pos = i
            record.facts = _facts(bytes(head), bytes(tail))
            yield piece.translate(NEWLINES)
            return


def _keep(head: bytearray, tail: bytearray, piece: bytes) -> None:
    if len(head) < KEEP_BYTES:
        head += piece[: KEEP_BYTES - len(head)]
    tail += piece[-KEEP_BYTES:]
    del tail[:-KEEP_BYTES]


def _facts(head: bytes, tail: bytes) -> dict[str, str]:
    """The short top-level strings that name the event: the first occurrence in the head for
    the fields CloudTrail writes first, the last in the tail for those it writes last."""
    facts: dict[str, str] = {}
    for name in HEAD_FIELDS:
        found = re.search(_SHORT_STRING % name.encode(), head)
        if found is not None:
            facts[name] = found.group(1).decode("utf-8", "replace")
    for name in TAIL_FIELDS:
        matches = list(re.finditer(_SHORT_STRING % name.encode(), tail))
        if matches:
            facts[name] = matches[-1].group(1).decode("utf-8", "replace")
    account = re.search(rb'"accountId"[ \t\r\n]*:[ \t\r\n]*"(\d{12})"', head)
    if account is not None and "recipientAccountId" not in facts:
        facts["recipientAccountId"] = account.group(1).decode()
    return facts

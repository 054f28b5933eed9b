"""The ends of a CloudTrail log file's document around its records: the `{"Records":[` header,
the trailer after the list (`}`, or more keys), and a document of another layout parsed whole
(the only case where a whole file is held in memory). `splitter.py` cuts the records between."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from umbrellabot.enrich.oversize import OversizeRecord
from umbrellabot.enrich.text_window import (
    CLOSE_CURLY,
    QUOTE,
    WS_RUN,
    LogFormatError,
    TextWindow,
    loads_json,
)

Entry = dict[str, Any] | OversizeRecord  # a record, or one too large to parse
# An entry and, for a record cut out on its own (record_cuts.py), its text as in the file
TextedEntry = tuple[Entry, bytes | None]

COMMA: Final = 0x2C
HEADER: Final = (b"{", b'"Records"', b":", b"[")


class DocumentWindow(TextWindow):
    """A text window that knows the document's header and trailer."""

    def header(self, i: int) -> int:
        """Match `{"Records":[` (any whitespace between) at `i`; the index after it, or -1."""
        for token in HEADER:
            i = self.skip_ws(i)
            if i < 0:
                raise LogFormatError("truncated JSON")
            while len(self.buf) - i < len(token) and not self.eof:
                i -= self.fill()
            if not self.buf.startswith(token, i):
                if len(self.buf) - i < len(token) and token.startswith(self.buf[i:]):
                    raise LogFormatError("truncated JSON")
                return -1
            i += len(token)
        return i

    def whole_document(self) -> Iterator[TextedEntry]:
        """Parse all that is left as one document (a layout other than the standard one)."""
        while not self.eof:
            self.fill(self.limit)
        document = loads_json(memoryview(self.buf)[self.pos :], self.error_at(self.pos))
        if not isinstance(document, dict) or "Records" not in document:
            raise LogFormatError("no Records list")
        records = document["Records"]
        if not isinstance(records, list):
            raise LogFormatError("Records is not a list")
        self.buf = bytearray()
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise LogFormatError(f"record {index} is not an object")
            yield record, None

    def trailer(self) -> None:
        """After the Records list: `}` and whitespace to the end, or more keys of the object."""
        buf = self.buf
        i = self.skip_ws(self.pos)
        if i < 0:
            raise LogFormatError("truncated JSON")
        if buf[i] == COMMA:
            self.pos = i
            key = self.skip_ws(i + 1)
            if key < 0:
                raise LogFormatError("truncated JSON")
            if buf[key] != QUOTE:
                raise LogFormatError(f"not JSON: expected a key at byte {self.error_at(key)}")
            while not self.eof:
                self.fill(self.limit)
            rest = b"{" + buf[self.pos + 1 :]
            others = loads_json(rest, self.error_at(self.pos))
            if "Records" in others:
                raise LogFormatError("more than one Records list")
            return
        if buf[i] != CLOSE_CURLY:
            raise LogFormatError(
                f"not JSON: expected ',' or '}}' after the Records list at byte {self.error_at(i)}"
            )
        self.pos = i + 1
        while True:
            match = WS_RUN.match(buf, self.pos)
            assert match is not None
            if match.end() < len(buf):
                at = self.error_at(match.end())
                raise LogFormatError(f"not JSON: trailing data after the document at byte {at}")
            self.pos = match.end()
            if self.eof:
                return
            self.fill(self.chunk_size)

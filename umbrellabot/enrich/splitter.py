"""Cutting the records of a CloudTrail log file out of its text in batches.

A CloudTrail file is one JSON object `{"Records":[{...},{...},...]}`; after its header the
records are cut out of the text in batches. A batch of compact records (as CloudTrail writes
them) is cut into each record's own text, parsed one by one and yielded with it
(`record_cuts.py`: enrichment then copies the text instead of serializing the record again);
other batches, and the rest of one whose next piece does not parse, are parsed by orjson in
one call, their records yielded without text.

How records are found: a record ends with `}` followed by whitespace, `,`, whitespace and `{`
(or `]` for the last one). Such a boundary is only a candidate (it may lie inside a nested list
of objects or inside a string), so candidates are validated by parsing: `[` + the text from a
true record start to a candidate `}` + `]` is valid JSON exactly when the candidate ends a
record. A batch ends at the last `},{"<first key>":` of the window (every CloudTrail record
begins with the same key, `eventVersion`, and this marker cannot occur inside a string), else at
the last `}`-`,`-`{`; after a batch fails on a boundary inside a record, the next batches pick
boundaries with as many `{` as `}` before them. Where no batch can be made (the end of the file,
a record orjson refuses, a window full of boundaries that fail), records are read one at a time
(`text_window.py`). A document that does not begin `{"Records":[` (other keys first) is parsed
whole (`document_ends.py`, with the header and the trailer).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import repeat
from typing import Any, Final, cast

import orjson

from umbrellabot.enrich.document_ends import COMMA, DocumentWindow, TextedEntry
from umbrellabot.enrich.oversize import OversizeRecord, record_end, stream_record
from umbrellabot.enrich.record_cuts import RecordCutter, TextedRecord
from umbrellabot.enrich.text_window import (
    OPEN_CURLY,
    OPEN_SQUARE,
    LogFormatError,
    RecordTooLarge,
    loads_json,
)

Batch = list[Any] | Iterator[TextedRecord]

BOM: Final = b"\xef\xbb\xbf"
# A record boundary: `}` ws `,` ws `{`; the `}` is the candidate end of a record.
SEPARATOR: Final = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")
# The opening of a compact record, `{"key":`, to learn the batch boundary marker from.
FIRST_KEY: Final = re.compile(rb'\{"[^"\\]{1,100}":')
JSON_START: Final = frozenset(b'{["-0123456789tfn')
CLOSE_SQUARE: Final = 0x5D
DICT_ONLY: Final = {dict}
WALK: Final = 32  # `}` looked at, from the end of the window, for a batch boundary
BALANCE_STEPS: Final = 64  # candidates looked at for one balanced batch boundary
UNBALANCED: Final = -2
CAREFUL_BATCHES: Final = 16  # batches checked by brace counts after a false boundary


class RecordSplitter(DocumentWindow):
    """Cuts the records out of one log file's text: the document, then batches."""

    cutter: RecordCutter  # of the batch being cut, once there is one

    @property
    def first_key(self) -> bytes | None:
        """`{"<key>":`, the opening every record of this file was seen to begin with."""
        return None if self.marker is None else self.marker[2:]

    # -- the document ------------------------------------------------------------------------

    def start(self) -> Iterator[TextedEntry]:
        """Read the start of the document and return the iterator of its records."""
        self.fill()
        while len(self.buf) < 3 and not self.eof:
            self.fill()
        if self.buf.startswith(BOM):
            self.pos = 3
        start = self.skip_ws(self.pos)
        if start < 0:
            raise LogFormatError("truncated JSON" if self.gzipped else "not gzip or JSON")
        first = self.buf[start]
        if first != OPEN_CURLY:
            if first not in JSON_START:
                raise LogFormatError(
                    f"not JSON: unexpected byte 0x{first:02x} at byte {self.error_at(start)}"
                    if self.gzipped
                    else "not gzip or JSON"
                )
            self.pos = start
            if self.gzipped:
                return self.whole_document()
            try:
                return iter(list(self.whole_document()))
            except LogFormatError as err:
                if str(err) in ("no Records list", "Records is not a list"):
                    raise
                raise LogFormatError("not gzip or JSON") from None
        body = self.header(start)
        if body < 0:
            self.pos = start
            return self.whole_document()
        self.pos = body
        return self.record_list()

    def record_list(self) -> Iterator[TextedEntry]:
        """The records of the Records list; self.pos is just after its `[`. A record longer
        than `max_record` bytes comes as an OversizeRecord, its text streamed."""
        index = 0
        buf = self.buf
        i = self.skip_ws(self.pos)
        while True:
            if i < 0:
                raise LogFormatError("truncated JSON")
            byte = buf[i]
            if byte == CLOSE_SQUARE:
                self.pos = i + 1
                self.trailer()
                return
            if index:
                if byte != COMMA:
                    raise LogFormatError(
                        f"not JSON: expected ',' or ']' after record {index - 1} "
                        f"at byte {self.error_at(i)}"
                    )
                self.pos = i
                i = self.skip_ws(i + 1)
                if i < 0:
                    raise LogFormatError("truncated JSON")
                byte = buf[i]
                if byte == CLOSE_SQUARE:
                    raise LogFormatError(f"not JSON: trailing comma at byte {self.error_at(i)}")
            if byte != OPEN_CURLY:
                if byte in JSON_START:
                    raise LogFormatError(f"record {index} is not an object")
                raise LogFormatError(
                    f"not JSON: unexpected byte 0x{byte:02x} at byte {self.error_at(i)}"
                )
            self.pos = i
            try:
                batch = self.batch()
                if batch is None:
                    self.reading_record = True  # the window now grows for this record only
                    record, end = self.one_record()
                    if self.max_record is not None and end - self.pos > self.max_record:
                        raise RecordTooLarge  # it fitted in the window, but it is too large
            except RecordTooLarge:
                small = self.small_record()
                if small is not None:  # the window ran ahead of a record within the limit
                    yield small, None
                    index += 1
                    i = self.skip_ws(self.pos)
                    continue
                oversize = OversizeRecord(index, iter(()))
                oversize.pieces = stream_record(self, oversize)
                yield oversize, None
                for _ in oversize.pieces:  # the reader did not want its text
                    pass
                index += 1
                i = self.skip_ws(self.pos)
                continue
            finally:
                self.reading_record = False
            if batch is None:
                self.pos = end
                yield record, None
                index += 1
            elif not isinstance(batch, list):  # records cut one by one, with their texts
                yield from batch
                index += self.cutter.count
            elif set(map(type, batch)) == DICT_ONLY:
                yield from zip(batch, repeat(None))
                index += len(batch)
            else:
                wrong = next(n for n, item in enumerate(batch) if type(item) is not dict)
                yield from zip(batch[:wrong], repeat(None))
                raise LogFormatError(f"record {index + wrong} is not an object")
            i = self.skip_ws(self.pos)

    def small_record(self) -> dict[str, Any] | None:
        """The record at self.pos when it ends in the window within `max_record` bytes."""
        end = record_end(self)
        if end is None or self.max_record is None or end - self.pos > self.max_record:
            return None
        record = loads_json(memoryview(self.buf)[self.pos : end], self.error_at(self.pos))
        self.pos = end
        return cast("dict[str, Any]", record)

    # -- batches -----------------------------------------------------------------------------

    def batch(self) -> Batch | None:
        """Parse as many whole records as the window holds from self.pos (a record's `{`): cut
        one by one with their texts (record_cuts.py; self.pos moves past each as it is taken),
        else in one orjson call (self.pos moves past them); None when the record at self.pos
        is to be read on its own."""
        buf = self.buf
        if self.base + self.pos < self.slow_until:
            return None
        if not self.marker_known:
            self.learn_marker()
        high = self.high()
        for _ in range(2):
            while True:
                if self.careful:
                    end = self.balanced_boundary(self.pos, high)
                else:
                    end = self.boundary(self.pos, high)
                if end >= 0:
                    break
                if end == UNBALANCED or self.eof or high < len(buf):
                    self.slow_until = self.base + high
                    return None
                if len(buf) - self.pos >= self.limit:
                    self.slow_until = self.base + len(buf)
                    return None
                self.fill(max(self.chunk_size, len(buf) - self.pos))  # a long record: read on
                high = self.high()
            if self.max_record is not None and end - self.pos >= self.max_record:
                break  # it may hold a record over the limit: one at a time, measured
            cut = self.cut(self.pos, end)
            if cut is not None:
                return cut
            records, error = self.parse_batch(self.pos, end)
            if records is not None:
                self.pos = end + 1
                if self.careful:
                    self.careful -= 1
                return records
            if error > end and not self.careful:
                # The last record does not end at `end`: boundaries occur inside records
                # (nested lists of objects), so the next ones are checked by brace counts.
                self.careful = CAREFUL_BATCHES
            elif self.pos <= error < end:
                # orjson cannot read a record there: batches end before it, and the record
                # itself is read on its own (the stdlib may read it, or it is an error).
                self.trouble = self.base + error
                high = error
            else:
                break
        self.slow_until = self.base + end
        return None

    def cut(self, start: int, end: int) -> Iterator[TextedRecord] | None:
        """The records of buf[start:end+1], cut one by one (record_cuts.py), or None when the
        first one cannot be (it is then parsed the careful way)."""
        if self.base + start == self.uncut:
            return None
        with memoryview(self.buf) as view:
            chunk = bytes(view[start : end + 1])
        if b"\n" in chunk or b"\r" in chunk:  # not compact: a text is to be one line
            return None
        self.cutter = RecordCutter(chunk, self.first_key)
        first = self.cutter.first()
        if first is None:
            self.uncut = self.base + start
            return None
        return self.cut_records(start, first)

    def cut_records(self, start: int, first: TextedRecord) -> Iterator[TextedRecord]:
        cutter = self.cutter
        yield from cutter.rest(first)
        if cutter.done == len(cutter.chunk):
            self.pos = start + cutter.done
        else:  # the next piece is read the careful way, from the `,` before it
            self.pos = start + cutter.done
            self.uncut = self.base + self.pos + 1

    def high(self) -> int:
        """Where a batch must end: before a spot orjson has refused, if there is one ahead."""
        trouble = self.trouble - self.base
        return trouble if trouble >= self.pos else len(self.buf)

    def learn_marker(self) -> None:
        match = FIRST_KEY.match(self.buf, self.pos)
        if match is not None:
            self.marker = b"}," + match.group()
            self.marker_known = True
        elif self.eof or len(self.buf) - self.pos > 110:
            self.marker_known = True

    def boundary(self, low: int, high: int) -> int:
        """The `}` of the last likely record boundary within buf[low:high], or -1.

        Without the marker in the window, the boundaries of nested lists of objects look alike:
        the window is first left to grow (it mostly holds the start of one record then)."""
        buf = self.buf
        if self.marker is not None:
            end = buf.rfind(self.marker, low, high)
            if end >= 0 or high - low < self.walk_after:
                return end
        end = high
        for _ in range(WALK):
            end = buf.rfind(b"}", low, end)
            if end < 0:
                return -1
            if SEPARATOR.match(buf, end) is not None:
                return end
        return -1

    def balanced_boundary(self, low: int, high: int) -> int:
        """Like boundary(), but the last candidate with as many `{` as `}` from `low` to it;
        UNBALANCED when there are candidates but none near the end of the window is balanced
        (braces inside strings, or many nested lists)."""
        buf = self.buf
        end = self.boundary(low, high)
        if end < 0:
            return end
        balance = buf.count(b"{", low, end) - buf.count(b"}", low, end + 1)
        for _ in range(BALANCE_STEPS):
            if balance == 0:
                return end
            after = end
            end = self.boundary(low, after)
            if end < 0:
                break
            balance -= buf.count(b"{", end + 1, after) - buf.count(b"}", end + 1, after + 1)
        return UNBALANCED

    def parse_batch(self, start: int, end: int) -> tuple[list[Any] | None, int]:
        """Parse buf[start:end+1] as `[` + it + `]`, in place: the byte before `start` (already
        consumed) becomes `[`, the one after `end` becomes `]` for the time of the parse.
        Returns the records, or None and the index in buf where orjson found an error (-1 when
        orjson does not say where)."""
        buf = self.buf
        after = buf[end + 1]
        buf[start - 1] = OPEN_SQUARE
        buf[end + 1] = CLOSE_SQUARE
        view = memoryview(buf)
        segment = view[start - 1 : end + 2]
        try:
            records: list[Any] = orjson.loads(segment)
        except orjson.JSONDecodeError as err:
            doc, position = err.doc, err.pos
            if not doc:
                return None, -1
            if not doc.isascii():
                position = len(doc[:position].encode("utf-8", "surrogatepass"))
            return None, start - 1 + position
        finally:
            segment.release()
            view.release()
            buf[end + 1] = after
        return records, -1

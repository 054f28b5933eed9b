"""Cutting a run of compact records into each record's own text, so that enrichment can copy a
record's bytes as they are and add its fields after them instead of serializing it again.

A run is the text of whole records separated by `,` alone, `{...},{...},{...}`, as CloudTrail
delivers them. A record ends at a `},{` whose `}` closes as many braces as the record opened,
or, quicker, at a `},{` followed by the first key every record begins with (`eventVersion`).
Either is only a candidate: braces inside strings miscount, and a nested list of objects may
begin with the same key. What proves a cut is orjson parsing the piece as one object (a piece
cut inside a record, or holding two, is no JSON object); the first piece that does not parse
ends the run, and the splitter reads the rest its careful way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import orjson

SEPARATOR: Final = b"},{"
OPEN: Final = b"{"
CLOSE: Final = b"}"

TextedRecord = tuple[dict[str, Any], bytes]


def record_ends(chunk: bytes, first_key: bytes | None) -> list[int]:
    """The index just after each candidate record's `}` in `chunk`, a run of compact records
    (the last end is len(chunk)). `first_key` is `{"<key>":`, the opening of every record."""
    ends: list[int] = []
    find, count, begins = chunk.find, chunk.count, chunk.startswith
    size, start = len(chunk), 0
    while start < size:
        cut = find(SEPARATOR, start)
        if cut >= 0 and (first_key is None or not begins(first_key, cut + 2)):
            balance = count(OPEN, start, cut + 1) - count(CLOSE, start, cut + 1)
            while balance and cut >= 0:  # inside the record still: a nested list of objects
                after = cut + 1
                cut = find(SEPARATOR, after)
                stop = size if cut < 0 else cut + 1
                balance += count(OPEN, after, stop) - count(CLOSE, after, stop)
        end = size if cut < 0 else cut + 1
        ends.append(end)
        start = end + 1  # past the `,`
    return ends


class RecordCutter:
    """The records of one run with their texts, parsed one by one as they are asked for.

    `done` is how many bytes of the run were cut into records so far and `count` how many
    records; iteration stops early at a piece orjson does not parse as one object."""

    def __init__(self, chunk: bytes, first_key: bytes | None) -> None:
        self.chunk = chunk
        self.ends = record_ends(chunk, first_key)
        self.done = 0
        self.count = 0

    def first(self) -> TextedRecord | None:
        """The run's first record, or None when its first piece is no record."""
        return self._parse(self.ends[0]) if self.ends else None

    def rest(self, first: TextedRecord) -> Iterator[TextedRecord]:
        yield first
        for end in self.ends[1:]:
            texted = self._parse(end)
            if texted is None:
                return
            yield texted

    def _parse(self, end: int) -> TextedRecord | None:
        start = self.done + 1 if self.count else 0
        text = self.chunk[start:end]
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if record.__class__ is not dict:
            return None
        self.done = end
        self.count += 1
        return record, text

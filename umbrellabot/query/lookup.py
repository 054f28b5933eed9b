"""Finding one event by its eventID: the state index first (no query cost), otherwise the query
engine over a bounded window; then the full record from the processed object. `show --from DIR`
searches a folder of enriched files instead (`find_in_folder`), every day of it.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from umbrellabot.model.layout import is_log_name
from umbrellabot.query.queries import Engine, TimeRange, event_by_id, valid_event_id
from umbrellabot.storage.ports import EventIndex

log = logging.getLogger(__name__)
ReadObject = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True)
class FoundEvent:
    record: dict[str, Any]
    location: str  # the processed key, s3:// URL or local path it was read from
    via: str  # "index" or the engine's name


def record_in(data: bytes, event_id: str) -> dict[str, Any] | None:
    """The record with `event_id` in an enriched file (gzip JSON lines, or plain)."""
    text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    needle = orjson.dumps(event_id)
    for line in io.BytesIO(text):
        if needle not in line:  # cheap: most lines are other events
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("eventID") == event_id:
            return record
    return None


def enriched_files(root: Path) -> list[Path]:
    """Every enriched file under `root`, any layout (scan keeps its sources' relative paths),
    never scan's `.partial-` temporaries."""
    return sorted(
        path
        for path in root.rglob("*")
        if is_log_name(path.name) and not path.name.startswith(".") and path.is_file()
    )


async def find_in_folder(root: Path, event_id: str) -> FoundEvent | None:
    """The event in any enriched file under `root` (what `show --from DIR` searches: every
    day, no index, no engine); the files are read on a worker thread."""
    event_id = valid_event_id(event_id)

    def search() -> FoundEvent | None:
        for path in enriched_files(root):
            try:
                record = record_in(path.read_bytes(), event_id)
            except (OSError, EOFError, gzip.BadGzipFile):
                continue  # a file being written, or damaged: the others still count
            if record is not None:
                return FoundEvent(record, str(path), "folder")
        return None

    return await asyncio.to_thread(search)


class EventLocator:
    def __init__(
        self,
        read_object: ReadObject,
        *,
        index: EventIndex | None = None,
        engine: Engine | None = None,
        window_days: int = 90,
    ) -> None:
        self._read = read_object
        self._index = index
        self._engine = engine
        self._window_days = window_days

    @property
    def has_index(self) -> bool:
        return self._index is not None

    async def find(self, event_id: str) -> FoundEvent | None:
        """Raises queries.InvalidQueryInput for anything that is not an eventID, before any
        lookup, and queries.QueryError when the engine fails."""
        return await self.find_indexed(event_id) or await self.find_in_engine(event_id)

    async def find_indexed(self, event_id: str) -> FoundEvent | None:
        """The event through the state index only (no query cost)."""
        event_id = valid_event_id(event_id)
        # a thread: the ingest cycle may hold the database for a moment
        indexed = await asyncio.to_thread(self._index.find_event, event_id) if self._index else None
        if indexed is not None:
            record = await self._from(indexed.key, event_id)
            if record is not None:
                return FoundEvent(record, indexed.key, "index")
            log.warning("index points %s at %s, which no longer holds it", event_id, indexed.key)
        return None

    @property
    def has_engine(self) -> bool:
        return self._engine is not None

    async def find_in_engine(self, event_id: str) -> FoundEvent | None:
        """The event through the query engine over the last `window_days` (a query's cost)."""
        event_id = valid_event_id(event_id)
        if self._engine is None:
            return None
        rows = await self._engine.run(event_by_id(event_id, TimeRange.last(days=self._window_days)))
        for row in rows:
            location = str(row.get("path") or "")
            record = await self._from(location, event_id) if location else None
            if record is not None:
                return FoundEvent(record, location, self._engine.name)
        return None

    async def _from(self, location: str, event_id: str) -> dict[str, Any] | None:
        try:
            data = await self._read(location)
        except FileNotFoundError:
            return None
        return await asyncio.to_thread(record_in, data, event_id)  # gunzip: not on the loop

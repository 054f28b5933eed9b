"""DuckDB engine: the query interface over a local folder of enriched files.

The folder (ENRICHED_LOCAL_PATH) is what `umbrellabot scan --out DIR` writes: enriched JSON
lines, gzip, at CloudTrail's key layout

    DIR/[prefix/]AWSLogs/[o-xxxxxxxxxx/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz

How a query runs (on a worker thread, one in-memory DuckDB connection per query):

1. Partition pruning: the `CloudTrail/<region>/` folders are found by a walk that stops at them,
   then only the `YYYY/MM/DD/` folders of the query's time-range days are listed. No files: `[]`,
   DuckDB is not started. Files whose name starts with `.` (scan's `.partial-` temporaries) are
   never read.
2. The relation that stands for `{events}` is a view over `read_json([files...])` with explicit
   columns, exposing the Athena table's column names (lower-case CloudTrail top-level fields,
   `useridentity` as a struct, `requestparameters` & co. as JSON text, `xrules` as a list) plus
   the partition columns `account`, `region`, `"date"` (YYYY/MM/DD) taken from the file's path,
   and `"$path"`, the file (Athena's pseudo-column).
3. The logical query (Trino SQL) is transpiled to DuckDB by sqlglot; its `:name` parameters come
   out as DuckDB named parameters (`$name`) and the values are passed to `execute` separately.
   Nothing a user typed is ever part of the SQL text.

Binding by name after transpiling, rather than positional `?` before it: sqlglot reorders some
arguments (Trino `date_add('second', :n, from_iso8601_timestamp(:t))` becomes
`CAST($t AS TIMESTAMPTZ) + INTERVAL ($n) SECOND`), so positions fixed before translation could
pair values with the wrong placeholders.

Odd records: the reader runs with `ignore_errors=true`. A value of the wrong shape for its
column (a list where an object was expected, text where a list was expected) becomes NULL in
that column only, the rest of the record stays; a line that is not JSON, or that DuckDB's parser
refuses (a lone UTF-16 surrogate escape), becomes a row of NULLs, which no time-range predicate
matches. Booleans and numbers in text columns read as text (`readOnly` true -> 'true', like
Athena's SerDe). JSON keys are matched case-sensitively, so the columns are declared with
CloudTrail's exact key names (`eventID`, `userIdentity.sessionContext.sessionIssuer.userName`,
`resources[].ARN`); DuckDB identifiers are case-insensitive, so SQL names them in lower case.
A corrupt gzip file fails the query (QueryError with DuckDB's reason, which does not name the
file); scan and ingest write enriched files whole or not at all, so this takes outside damage.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from umbrellabot.errors import first_line
from umbrellabot.model import schema
from umbrellabot.model.layout import CLOUDTRAIL, is_log_name
from umbrellabot.query.queries import ParamValue, Query, QueryError, QueryTimeout, Row

EVENTS_RELATION = "enriched_events"
_RAW_RELATION = "enriched_raw"
_MAX_DEPTH = 16  # folders above CloudTrail/ (prefix, AWSLogs, org, account): a guard on loops


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Column types: a scalar is its DuckDB name, a struct a dict of fields, a list a one-item list.
ColumnType = str | dict[str, "ColumnType"] | list["ColumnType"]
_DUCKDB = {schema.TEXT: "VARCHAR", schema.TEXT_MAP: "MAP(VARCHAR, VARCHAR)"}
# CloudTrail's JSON key (exact case) -> type: the same columns as the Athena table. Objects
# Athena keeps as JSON text (requestParameters...) are VARCHAR: DuckDB gives an object's JSON
# text, and a record that already holds JSON text in a string keeps that text, so
# json_extract_scalar works on both.
COLUMNS: Mapping[str, ColumnType] = {
    key: schema.convert(kind, _DUCKDB, str) for key, kind in schema.RECORD.items()
}


def duckdb_type(kind: ColumnType) -> str:
    """DuckDB type text: STRUCT("name" TYPE, ...), TYPE[]."""
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return f"{duckdb_type(kind[0])}[]"
    fields = ", ".join(f"{_quote(name)} {duckdb_type(inner)}" for name, inner in kind.items())
    return f"STRUCT({fields})"


_READ_COLUMNS = {key: duckdb_type(kind) for key, kind in COLUMNS.items()}
_PARTITIONS = {
    "account": r"/(\d{12})/CloudTrail/[^/]+/\d{4}/\d{2}/\d{2}/[^/]+$",
    "region": r"/CloudTrail/([^/]+)/\d{4}/\d{2}/\d{2}/[^/]+$",
    "date": r"/CloudTrail/[^/]+/(\d{4}/\d{2}/\d{2})/[^/]+$",
}


_VIEW_SQL = (
    f"CREATE TEMP VIEW {EVENTS_RELATION} AS SELECT "
    + ", ".join(f"{_quote(key)} AS {_quote(key.lower())}" for key in COLUMNS)
    + ", "
    + ", ".join(
        f"regexp_extract(filename, {_literal(pattern)}, 1) AS {_quote(name)}"
        for name, pattern in _PARTITIONS.items()
    )
    + f', filename AS "$path" FROM {_RAW_RELATION}'
)


def region_folders(root: Path) -> list[Path]:
    """Every `.../CloudTrail/<region>/` folder under `root`; the walk stops at them."""
    found: list[Path] = []

    def walk(folder: str, depth: int) -> None:
        for name, path in _subfolders(folder):
            if name == CLOUDTRAIL:
                found.extend(Path(region) for _, region in _subfolders(path))
            elif depth < _MAX_DEPTH and not name.startswith("."):
                walk(path, depth + 1)

    walk(str(root), 0)
    return found


def _subfolders(folder: str) -> list[tuple[str, str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted((entry.name, entry.path) for entry in entries if entry.is_dir())
    except OSError:
        return []


def partition_files(root: Path, days: Iterable[date]) -> list[Path]:
    """The enriched files of the given days: `.../CloudTrail/<region>/YYYY/MM/DD/*.json[.gz]`.

    Only folders that exist are listed (years, then months, then days of the range), so a long
    range over a sparse history costs what is there, not one lookup per day."""
    wanted = {(f"{day:%Y}", f"{day:%m}", f"{day:%d}") for day in days}
    years = {year for year, _, _ in wanted}
    months = {(year, month) for year, month, _ in wanted}
    files: list[Path] = []
    for region in region_folders(root.absolute()):
        for year, year_path in _subfolders(str(region)):
            if year not in years:
                continue
            for month, month_path in _subfolders(year_path):
                if (year, month) not in months:
                    continue
                for day, day_path in _subfolders(month_path):
                    if (year, month, day) in wanted:
                        files.extend(_log_files(day_path))
    return files


def _log_files(folder: str) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if is_log_name(entry.name) and not entry.name.startswith(".") and entry.is_file()
            )
    except OSError:
        return []


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, frozenset[str]]:
    """Trino SQL over `{events}` -> (DuckDB SQL, the named parameters it uses).

    Raises QueryError for SQL that sqlglot cannot read or translate."""
    text = sql.replace("{events}", EVENTS_RELATION)
    try:
        statements = sqlglot.parse(text, read="trino")
        if len(statements) != 1 or statements[0] is None:
            raise QueryError("expected exactly one SQL statement")
        tree = statements[0]
        names = frozenset(
            str(node.this) for node in tree.find_all(exp.Placeholder) if node.this is not None
        )
        if any(node.this is None for node in tree.find_all(exp.Placeholder)):
            raise QueryError("positional '?' parameters are not supported; use :name")
        translated = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as err:
        raise QueryError(f"cannot translate the query to DuckDB: {first_line(str(err))}") from None
    return translated, names


def _bound_values(names: frozenset[str], params: Mapping[str, ParamValue]) -> dict[str, Any]:
    missing = sorted(names - params.keys())
    if missing:
        raise QueryError(f"no value for query parameter :{missing[0]}")
    return {name: params[name] for name in names}


class _Interrupt:
    """Lets the event loop stop a query running on a worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self.reason: str | None = None

    def attach(self, connection: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._connection = connection
        self.check()

    def check(self) -> None:
        """Stop (as DuckDB does) when the query was stopped between two statements."""
        if self.reason is not None:
            raise duckdb.InterruptException(self.reason)

    def fire(self, reason: str) -> None:
        with self._lock:
            self.reason = reason
            if self._connection is not None:
                self._connection.interrupt()


class DuckDBEngine:
    """queries.Engine over a local folder of enriched files."""

    name = "duckdb"

    def __init__(
        self, root: Path, *, timeout_s: float | None = 300.0, threads: int | None = None
    ) -> None:
        self.root = root
        self.timeout_s = timeout_s
        self.threads = threads

    async def run(self, query: Query) -> list[Row]:
        """Rows as dicts; the work happens on a worker thread. Raises QueryError/QueryTimeout."""
        interrupt = _Interrupt()
        work = asyncio.ensure_future(asyncio.to_thread(self.run_sync, query, interrupt=interrupt))
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.timeout_s)
        except TimeoutError:
            interrupt.fire("timeout")
            await asyncio.gather(work, return_exceptions=True)
            raise QueryTimeout(
                f"query {query.name} took longer than {self.timeout_s:g}s and was stopped"
            ) from None
        except asyncio.CancelledError:
            interrupt.fire("cancelled")
            raise

    def files_for(self, query: Query) -> list[Path]:
        """The files a query reads: those of its time range's days."""
        return partition_files(self.root, query.time_range.days())

    def run_sync(self, query: Query, *, interrupt: _Interrupt | None = None) -> list[Row]:
        """`run` without the thread and the timeout."""
        sql, names = translate(query.sql)
        values = _bound_values(names, query.all_params())
        files = self.files_for(query)
        if not files:
            return []
        try:
            with duckdb.connect(":memory:") as connection:
                if interrupt is not None:
                    interrupt.attach(connection)
                connection.execute("SET TimeZone = 'UTC'")
                if self.threads is not None:
                    connection.execute(f"SET threads = {int(self.threads)}")
                raw = connection.read_json(
                    [str(path) for path in files],
                    format="newline_delimited",
                    columns=dict(_READ_COLUMNS),
                    ignore_errors=True,
                    filename=True,
                )
                raw.create_view(_RAW_RELATION)
                connection.execute(_VIEW_SQL)
                if interrupt is not None:
                    interrupt.check()
                cursor = connection.execute(sql, values)
                columns = [column[0] for column in cursor.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.InterruptException:
            reason = interrupt.reason if interrupt is not None else None
            raise QueryTimeout(
                f"query {query.name} was stopped ({reason or 'interrupted'})"
            ) from None
        except duckdb.Error as err:
            raise QueryError(f"DuckDB: {first_line(str(err))}") from None

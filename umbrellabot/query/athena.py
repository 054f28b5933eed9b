"""Athena through aioboto3: the query engine over the enriched copies in S3.

`AthenaEngine.run` puts the table (with more than one layout in the bucket, every layout's table
as one UNION ALL: athena_layouts.py, athena_catalog.py) in place of `{events}`, turns named
parameters into positional `?` (queries.bind) and sends the values as `ExecutionParameters`,
never inside the SQL text. It polls `GetQueryExecution` with exponential backoff; past
`ATHENA_TIMEOUT_S` it calls `StopQueryExecution` and raises `QueryTimeout`. FAILED and
CANCELLED become `QueryError` carrying Athena's reason. Results are read page by page
(`NextToken`) and typed from the column metadata.

What no retry can fix (access denied, bad credentials) becomes `AthenaAccessError`, one sentence
naming the action and the workgroup, like s3.S3AccessError. Throttling and 5xx are retried by
botocore's adaptive retry mode.

The table itself is made by `athena_setup.py` (statements from `athena_ddl.py`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from umbrellabot.errors import one_line
from umbrellabot.query.athena_layouts import events_relation
from umbrellabot.query.queries import ParamValue, Query, QueryError, QueryTimeout, Row, bind
from umbrellabot.storage.aws import NO_CREDENTIALS, aws_session, client_config

log = logging.getLogger(__name__)

FATAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
TERMINAL_FAILURES = frozenset({"FAILED", "CANCELLED"})
MAX_PAGE_SIZE = 1000  # GetQueryResults' MaxResults limit
_INTEGER_TYPES = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOAT_TYPES = frozenset({"double", "float", "real", "decimal"})

StateObserver = Callable[[str, str], None]
Sleep = Callable[[float], Any]


class TableSource(Protocol):
    """The tables `{events}` reads (athena_catalog.CatalogTables)."""

    async def names(self) -> tuple[str, ...]: ...


class AthenaAccessError(QueryError):
    """Athena refused the request itself; str() is one sentence for the user."""


@dataclass(frozen=True)
class Backoff:
    """Delays between GetQueryExecution calls: `initial_s`, times `factor`, at most `max_s`."""

    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


def athena_literal(value: ParamValue) -> str:
    """One value as Athena wants it in `ExecutionParameters`.

    Athena reads each execution parameter as a SQL literal put in place of its `?`, not as a
    typed value: "For SQL execution parameters to be treated as strings, they must be enclosed
    in single quotes rather than double quotes" (Athena user guide, "Use parameterized queries",
    considerations and limitations; `EXECUTE ... USING 'usa'` is the same form). So a string is
    sent quoted, with each `'` doubled as in any Trino string literal (the only escape a Trino
    literal has: a backslash is an ordinary character), and a number as its plain text. The value
    cannot end the literal early, so it can never become SQL (tests/query/test_athena.py checks the
    literals with sqlglot's Trino parser and by evaluating them in DuckDB).
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot pass {value!r} to Athena")
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def parse_array(text: str) -> list[str]:
    """Athena's text of an array (`[a, b]`) as a list of strings (element types are not in the
    metadata; elements holding ', ' cannot be told apart, which rule ids never do)."""
    inner = text.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    return inner.split(", ") if inner else []


def convert(text: str | None, kind: str) -> Any:
    """One cell from its text and Athena's column type; NULL (no VarCharValue) is None."""
    if text is None:
        return None
    kind = kind.lower()
    if kind in _INTEGER_TYPES:
        return int(text)
    if kind in _FLOAT_TYPES:
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "array":
        return parse_array(text)
    return text  # varchar, char, date, timestamp, json, row, map...


def _describe(err: Exception, action: str, workgroup: str) -> QueryError:
    if isinstance(err, NoCredentialsError):
        return AthenaAccessError(NO_CREDENTIALS)
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = one_line(str(error.get("Message", ""))).rstrip(".")
        detail = f"{code}{': ' + message if message else ''}"
        if code in FATAL_CODES:
            return AthenaAccessError(
                f"Athena refused athena:{action} in workgroup {workgroup!r}: {detail}. Check the"
                " credentials and the IAM policy (athena:StartQueryExecution/GetQueryExecution/"
                "GetQueryResults/StopQueryExecution, glue:GetTable, s3 on the results prefix)"
            )
        return QueryError(f"athena:{action} in workgroup {workgroup!r}: {detail}")
    return QueryError(f"athena:{action}: {type(err).__name__}: {one_line(str(err))}")


def _failure(query_id: str, label: str, state: str, status: dict[str, Any]) -> str:
    reason = one_line(str(status.get("StateChangeReason") or ""))
    error = status.get("AthenaError") or {}
    message = one_line(str(error.get("ErrorMessage") or ""))
    if message and message not in reason:
        reason = f"{reason}; {message}" if reason else message
    return f"Athena query {query_id} ({label}) {state}: {reason or 'Athena gave no reason'}"


class AthenaEngine:
    """queries.Engine over the enriched table, through one aioboto3 Athena client."""

    name = "athena"

    def __init__(
        self,
        client: Any,
        *,
        database: str,
        table: str,
        workgroup: str,
        output_location: str,
        timeout_s: float,
        backoff: Backoff | None = None,
        page_size: int = MAX_PAGE_SIZE,
        sleep: Sleep = asyncio.sleep,
        on_state: StateObserver | None = None,
        tables: TableSource | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self._client = client
        self.database = database
        self.table = table
        self.workgroup = workgroup
        self.output_location = output_location
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self.page_size = page_size
        self._sleep = sleep
        self._on_state = on_state
        self._tables = tables

    async def relation(self) -> str:
        """`{events}`: the table, or every layout's table as one UNION ALL (athena_layouts.py;
        names checked by the settings and the catalog reader: no quote inside)."""
        names = (self.table,) if self._tables is None else await self._tables.names()
        return events_relation(self.database, names)

    async def run(self, query: Query) -> list[Row]:
        sql = query.sql.replace("{events}", await self.relation())
        text, values = bind(sql, query.all_params())
        query_id = await self._execute(
            query.name,
            QueryString=text,
            QueryExecutionContext={"Database": self.database},
            **({"ExecutionParameters": [athena_literal(v) for v in values]} if values else {}),
        )
        return await self._results(query_id)

    async def execute_ddl(self, sql: str) -> str:
        """Run one DDL statement (fully qualified names) to completion; returns the query id."""
        return await self._execute("ddl", QueryString=sql)

    async def _call(self, operation: str, **params: Any) -> Any:
        try:
            return await getattr(self._client, operation)(**params)
        except (ClientError, BotoCoreError) as err:
            action = self._client.meta.method_to_api_mapping.get(operation, operation)
            raise _describe(err, action, self.workgroup) from err

    async def _execute(self, label: str, **params: Any) -> str:
        started = await self._call(
            "start_query_execution",
            WorkGroup=self.workgroup,
            ResultConfiguration={"OutputLocation": self.output_location},
            **params,
        )
        query_id = str(started["QueryExecutionId"])
        log.debug("Athena query %s (%s) started", query_id, label)  # a cycle runs several
        try:
            await self._wait(query_id, label)
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(query_id, label))
            raise
        return query_id

    async def _wait(self, query_id: str, label: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        delays = self.backoff.delays()
        while True:
            response = await self._call("get_query_execution", QueryExecutionId=query_id)
            status = response.get("QueryExecution", {}).get("Status", {})
            state = str(status.get("State", ""))
            log.debug("Athena query %s (%s): %s", query_id, label, state)
            if self._on_state is not None:
                self._on_state(query_id, state)
            if state == "SUCCEEDED":
                return
            if state in TERMINAL_FAILURES:
                raise QueryError(_failure(query_id, label, state, status))
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._stop(query_id, label)
                raise QueryTimeout(
                    f"Athena query {query_id} ({label}) did not finish within"
                    f" {self.timeout_s:g} s (ATHENA_TIMEOUT_S) and was stopped"
                )
            await self._sleep(min(next(delays), remaining))

    async def _stop(self, query_id: str, label: str) -> None:
        try:
            await self._call("stop_query_execution", QueryExecutionId=query_id)
        except QueryError as err:
            log.warning("could not stop Athena query %s (%s): %s", query_id, label, err)
        else:
            log.info("Athena query %s (%s) stopped", query_id, label)

    async def _results(self, query_id: str) -> list[Row]:
        rows: list[Row] = []
        columns: list[tuple[str, str]] | None = None
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            page = await self._call(
                "get_query_results",
                QueryExecutionId=query_id,
                MaxResults=self.page_size,
                **extra,
            )
            result_set = page.get("ResultSet", {})
            data = [
                [cell.get("VarCharValue") for cell in row.get("Data", [])]
                for row in result_set.get("Rows", [])
            ]
            if columns is None:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [(str(c["Name"]), str(c.get("Type", "varchar"))) for c in info]
                # The first row of the first page repeats the column names (DML results).
                if data and data[0] == [c.get("Label", c["Name"]) for c in info]:
                    data = data[1:]
            rows.extend(
                {
                    name: convert(value, kind)
                    for (name, kind), value in zip(columns, row, strict=False)
                }
                for row in data
            )
            token = page.get("NextToken")
            if not token:
                return rows


@asynccontextmanager
async def athena_client(*, region: str | None, max_attempts: int) -> AsyncIterator[Any]:
    """One aioboto3 Athena client; AWS_ENDPOINT_URL and the credential chain apply."""
    config = client_config(1, max_attempts)
    async with aws_session().client("athena", region_name=region, config=config) as client:
        yield client

"""Which tables `{events}` reads: ATHENA_TABLE and the other layouts' tables (athena_layouts.py),
found in the Glue Data Catalog, where Athena's DDL puts them.

`athena setup` may run anywhere (a laptop, `docker compose exec`, the daemon at start), so the
catalog is the one place that knows which tables exist; nothing is kept in the local state. One
`glue:GetTables` over the database (paged; Glue returns only the tables the policy allows, and a
table is ours when its name is ATHENA_TABLE or `ATHENA_TABLE__…` and it carries the
`umbrellabot.layout` property) is kept for `ttl_s`, so a lookup costs no extra round trip and a
table that setup just made is read within a minute (at once in the process that made it).
Setup reads it fresh (`family`) to keep each layout on the table that already reads it.

When the catalog cannot be read: no database yet, or no `glue:GetTables` in an older policy, the
engine reads ATHENA_TABLE alone (one warning, naming the permission); a transient failure keeps
the tables known so far, or is a QueryError when none are known.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from umbrellabot.errors import one_line
from umbrellabot.query.athena import AthenaAccessError
from umbrellabot.query.athena_ddl import LAYOUT_PROPERTY
from umbrellabot.query.athena_layouts import is_family_name
from umbrellabot.query.queries import QueryError
from umbrellabot.storage.aws import aws_session, client_config

log = logging.getLogger(__name__)

TTL_S = 60.0
_MISSING = frozenset({"EntityNotFoundException"})
_REFUSED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})


class CatalogRefused(AthenaAccessError):
    """Glue refused to list the tables; str() names the action and the policy statement."""


class CatalogTables:
    """The tables of one ATHENA_TABLE family in one database."""

    def __init__(
        self,
        client: Any,
        *,
        database: str,
        base: str,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.database = database
        self.base = base
        self.ttl_s = ttl_s
        self._clock = clock
        self._names: tuple[str, ...] | None = None
        self._read_at = float("-inf")
        self._warned = False

    def forget(self) -> None:
        """Read the catalog again at the next query (setup just changed it); what was read so far
        stays the fallback."""
        self._read_at = float("-inf")

    async def names(self) -> tuple[str, ...]:
        """ATHENA_TABLE first, then the other layouts' tables by name (kept for `ttl_s`)."""
        now = self._clock()
        if self._names is not None and now - self._read_at < self.ttl_s:
            return self._names
        try:
            found = await self.family()
        except CatalogRefused as err:
            found = {}
            self._warn_refused(err)
        except QueryError as err:
            return self._kept(err, now)
        self._names = (self.base, *sorted(set(found) - {self.base}))
        self._read_at = now
        return self._names

    async def family(self) -> dict[str, dict[str, str]]:
        """The family's tables in the catalog now: name -> table properties ({} without the
        database). Raises CatalogRefused when Glue refuses, QueryError when it does not answer."""
        try:
            return await self._list()
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _MISSING:
                return {}
            detail = f"{code}: {one_line(str(error.get('Message', '')))}"
            if code in _REFUSED:
                raise CatalogRefused(
                    f"Glue refused glue:GetTables on database {self.database!r} ({detail});"
                    " the policy needs it (config/iam-policy.json, GlueCatalogForTheTable)"
                ) from err
            raise QueryError(f"glue:GetTables on database {self.database!r}: {detail}") from err
        except BotoCoreError as err:
            raise QueryError(
                f"glue:GetTables on database {self.database!r}: {type(err).__name__}:"
                f" {one_line(str(err))}"
            ) from err

    async def _list(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        token: dict[str, str] = {}
        while True:
            page = await self._call("get_tables", DatabaseName=self.database, **token)
            for table in page.get("TableList", []):
                name = str(table.get("Name", ""))
                properties = {str(k): str(v) for k, v in (table.get("Parameters") or {}).items()}
                if name != self.base and LAYOUT_PROPERTY not in properties:
                    continue  # someone else's table with a name like ours
                if is_family_name(self.base, name):
                    found[name] = properties
            if not page.get("NextToken"):
                return found
            token = {"NextToken": str(page["NextToken"])}

    async def _call(self, operation: str, **params: Any) -> Any:
        return await getattr(self._client, operation)(**params)

    def _warn_refused(self, err: CatalogRefused) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "%s: reading %s only, not the tables of other layouts (%s__*)",
                err,
                self.base,
                self.base,
            )

    def _kept(self, err: QueryError, now: float) -> tuple[str, ...]:
        if self._names is None:
            raise QueryError(f"{err} (the tables to query)") from err
        log.warning("%s: querying the tables known so far", err)
        self._read_at = now  # tried again after the TTL, not at every query meanwhile
        return self._names


@asynccontextmanager
async def glue_client(*, region: str | None, max_attempts: int) -> AsyncIterator[Any]:
    """One aioboto3 Glue client; AWS_ENDPOINT_URL and the credential chain apply."""
    config = client_config(1, max_attempts)
    async with aws_session().client("glue", region_name=region, config=config) as client:
        yield client

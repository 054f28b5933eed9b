"""Geo-IP adapters: the country of a source IP address.

Offline by default (iptocc: a bundled regional-registry database, no account). With an ipstack
key, ipstack answers first through aiohttp: addresses are prefetched per file (async), cached so
each costs one call, capped per run, and any failure or a spent quota falls back to the offline
database. Rules and enrichment only ever call the synchronous `country()`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
import iptocc

log = logging.getLogger(__name__)


class CountryLookup(Protocol):
    """Country of a source address. An online lookup is asked ahead, per file, on the event
    loop (`prefetch`), so that enrichment in worker processes stays synchronous and offline."""

    prefetches: bool  # whether `prefetch` is worth a pass over a file's addresses

    def country(self, address: str | None) -> str | None: ...

    async def prefetch(self, addresses: Iterable[str]) -> dict[str, str | None]:
        """Look `addresses` up ahead; returns what was learnt (for workers elsewhere)."""
        ...


@lru_cache(maxsize=65536)
def is_public_ip(address: str) -> bool:
    """True for a globally routable IPv4/IPv6 address (not a name, private range or reserved)."""
    try:
        return ipaddress.ip_address(address.strip()).is_global
    except ValueError:
        return False


class OfflineGeo:
    """iptocc's bundled database; None for anything that is not a public IP address."""

    prefetches = False

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    async def prefetch(self, addresses: Iterable[str]) -> dict[str, str | None]:
        return {}

    def country(self, address: str | None) -> str | None:
        if not address:
            return None
        cache = self._cache
        if address in cache:
            return cache[address]
        code = iptocc.country_code(address) if is_public_ip(address) else None
        if len(cache) < 200_000:  # a run sees few distinct addresses; stay bounded anyway
            cache[address] = code
        return code


@dataclass
class IpstackStats:
    calls: int = 0
    failures: int = 0
    fallbacks: int = 0  # addresses answered offline because of a failure or the cap


class IpstackGeo:
    """ipstack first, offline database as fallback."""

    prefetches = True

    def __init__(
        self,
        access_key: str,
        *,
        base_url: str = "http://api.ipstack.com",
        max_calls: int = 1000,
        timeout_s: float = 5.0,
        concurrency: int = 4,
        fallback: CountryLookup | None = None,
    ) -> None:
        self._key = access_key
        self._base_url = base_url.rstrip("/")
        self._max_calls = max_calls
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._concurrency = concurrency
        self._fallback = fallback or OfflineGeo()
        self._known: dict[str, str | None] = {}
        self._gave_up = False  # quota spent or key refused: stop calling for this run
        self.stats = IpstackStats()

    def country(self, address: str | None) -> str | None:
        if address and address in self._known:
            return self._known[address]
        if address and is_public_ip(address):
            self.stats.fallbacks += 1
        return self._fallback.country(address)

    def answers(self, addresses: Iterable[str]) -> dict[str, str | None]:
        """What ipstack said about these addresses (for workers in other processes)."""
        return {a: self._known[a] for a in addresses if a in self._known}

    async def prefetch(self, addresses: Iterable[str]) -> dict[str, str | None]:
        """Ask ipstack about every public address not asked before, within the cap; returns
        what ipstack said about `addresses` (now or before)."""
        asked = set(addresses)
        wanted = sorted({a for a in asked if a not in self._known and is_public_ip(a)})
        room = max(0, self._max_calls - self.stats.calls)
        if not self._gave_up and wanted and room > 0:
            await self._ask_all(wanted[:room])
        return self.answers(asked)

    async def _ask_all(self, wanted: list[str]) -> None:
        limit = asyncio.Semaphore(self._concurrency)
        async with aiohttp.ClientSession(timeout=self._timeout) as session:

            async def one(address: str) -> None:
                async with limit:
                    if not self._gave_up:
                        await self._ask(session, address)

            await asyncio.gather(*(one(address) for address in wanted))

    async def _ask(self, session: aiohttp.ClientSession, address: str) -> None:
        self.stats.calls += 1
        url = f"{self._base_url}/{address}"
        try:
            async with session.get(
                url, params={"access_key": self._key, "fields": "country_code"}
            ) as response:
                body: Any = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            self.stats.failures += 1
            log.warning(
                "ipstack lookup of %s failed (%s); using the offline database",
                address,
                type(err).__name__,
            )
            return
        if isinstance(body, dict) and body.get("success") is False:
            self.stats.failures += 1
            error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
            code = error.get("code")
            # 101 bad key, 104 monthly quota spent, 102/105 account problems: stop asking.
            if code in (101, 102, 104, 105):
                self._gave_up = True
            log.warning(
                "ipstack refused the lookup of %s: %s; using the offline database",
                address,
                error.get("info") or error.get("type") or "unknown error",
            )
            return
        code = body.get("country_code") if isinstance(body, dict) else None
        if isinstance(code, str) and code:
            self._known[address] = code.upper()

"""The enrichment worker processes, and what happens when one dies.

A worker killed by the kernel (out of memory on a huge data-event file), or crashing in native
code, breaks a `ProcessPoolExecutor` for good: every call in it and after it fails. Here the
broken pool is replaced at once (by whichever caller sees the break first), and every call that
was in it runs again — alone, with nothing else in the pool, so that a death then is certainly
that call's (`WorkerDied`), and the files that merely shared the pool are not blamed. A pool that
breaks again and again with no call done in between is reported (`problem`, for /readyz).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

from umbrellabot.enrich import workers

log = logging.getLogger(__name__)
T = TypeVar("T")
KEEPS_DYING = 3  # pool breaks in a row, with nothing done in between, that make it "not ready"


class WorkerDied(Exception):
    """The worker process running this call died, also when the call ran alone."""


class _Gate:
    """Many shared holders, or one exclusive one (who is waiting for it goes first)."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting += 1
            await self._changed.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()


class EnrichmentPool:
    """`processes` workers that load the rules once (0: one thread in this process)."""

    def __init__(
        self,
        processes: int,
        rule_paths: list[str],
        variables: dict[str, Any],
        sigma_skip_unsupported: bool = False,
    ) -> None:
        self._processes = processes
        self._init = (rule_paths, variables, sigma_skip_unsupported)
        self._gate = _Gate()
        self._closed = False
        self.breaks = 0  # pools replaced so far
        self.breaks_in_a_row = 0  # since the last call that completed
        if processes == 0:  # one thread: for small machines and debugging
            workers.load_worker_rules(*self._init)  # in this process: Ctrl-C stays the daemon's
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.Executor:
        if self._processes == 0:
            return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="enrich")
        return concurrent.futures.ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a running loop
            initializer=workers.init_worker,
            initargs=self._init,
        )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker. Raises WorkerDied when its worker died twice: once in
        the shared pool, once alone."""
        async with self._gate.shared():
            executor = self._executor
            try:
                return await self._call(executor, function, args)
            except BrokenProcessPool:
                self._replace(executor)
        async with self._gate.exclusive():
            executor = self._executor
            try:
                return await self._call(executor, function, args)
            except BrokenProcessPool as err:
                self._replace(executor)
                raise WorkerDied(
                    "its enrichment worker process died (killed, out of memory, or a crash)"
                ) from err

    async def _call(
        self, executor: concurrent.futures.Executor, function: Callable[..., T], args: Any
    ) -> T:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, partial(function, *args))
        self.breaks_in_a_row = 0
        return result

    def _replace(self, broken: concurrent.futures.Executor) -> None:
        if broken is not self._executor or self._closed:
            return  # another caller replaced it already, or we are closing
        self.breaks += 1
        self.breaks_in_a_row += 1
        log.warning(
            "an enrichment worker process died; the pool is replaced and the files in it run"
            " again, one at a time (%d in a row)",
            self.breaks_in_a_row,
        )
        broken.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()

    def problem(self) -> str | None:
        """Why the pool is not healthy, or None."""
        if self.breaks_in_a_row < KEEPS_DYING:
            return None
        return (
            f"the enrichment worker processes keep dying: the pool broke {self.breaks_in_a_row}"
            " times in a row with no file enriched in between (out of memory? see the logs)"
        )

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

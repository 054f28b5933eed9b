"""Everything one process needs — state, object store, engine, rules, detections, notifier and
the ingestor — assembled from `wiring`, and closed in reverse order afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from rich.console import Console

from umbrellabot.app import wiring, wiring_state
from umbrellabot.app.account_names import AccountDirectory
from umbrellabot.app.health import Metrics
from umbrellabot.app.ingest import Ingestor
from umbrellabot.config import Settings
from umbrellabot.errors import UsageError
from umbrellabot.query.detections import Detection
from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import Engine
from umbrellabot.rules.rule import Rule
from umbrellabot.storage.ports import Notifier, ObjectStore, StateBackend


class NoBucketError(UsageError):
    """Ingestion from S3 needs CLOUDTRAIL_BUCKET_NAME."""


@dataclass
class Services:
    settings: Settings
    state: StateBackend
    store: ObjectStore
    output: ObjectStore  # the enriched copies (the trail's store, or PROCESSED_BUCKET_NAME's)
    engine: Engine | None
    rules: list[Rule]
    detections: list[Detection]
    notifier: Notifier
    ingestor: Ingestor
    names: AccountDirectory
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def owner(self) -> str:
        """This process's name in file leases and outbox claims."""
        return self.ingestor.owner

    @property
    def where(self) -> str:
        bucket = self.settings.cloudtrail_bucket_name
        return f"s3://{bucket}" if bucket else f"folder {self.settings.cloudtrail_local_path}"

    def locator(self) -> EventLocator:
        return EventLocator(
            self.output.read,
            index=self.state.events,
            engine=self.engine,
            window_days=self.settings.event_lookup_days,
        )


@asynccontextmanager
async def services(
    settings: Settings, console: Console, *, wide: bool = False
) -> AsyncIterator[Services]:
    """Everything one process needs, closed in reverse order afterwards (`wide`: the console's
    alert table shows every column)."""
    rules = wiring.load_rule_list(settings)  # invalid rules stop here, before any I/O
    detections = wiring.load_configured_detections(settings)
    async with AsyncExitStack() as stack:
        state = wiring_state.open_state(settings)
        stack.callback(state.close)
        store = await stack.enter_async_context(wiring.open_store(settings))
        output = await stack.enter_async_context(wiring.open_output_store(settings, store))
        engine = await stack.enter_async_context(wiring.open_engine(settings))
        runner = Ingestor(
            settings,
            files=state.files,
            cycles=state.cycles,
            store=store,
            sink=output,
            rule_paths=wiring.rule_paths(settings),
            geo=wiring.build_geo(settings),
            output_for=wiring.output_for(settings),
            all_days=not settings.cloudtrail_bucket_name,
        )
        stack.callback(runner.close)
        names = AccountDirectory(settings)
        notifier = wiring.notifier_for(
            settings, state, console, rules, wide=wide, account_names=names
        )
        yield Services(
            settings, state, store, output, engine, rules, detections, notifier, runner, names
        )


@asynccontextmanager
async def lookup(settings: Settings) -> AsyncIterator[tuple[EventLocator, list[Rule]]]:
    """What `show` needs: the index (when there is state), the engine and the store to read the
    enriched copies from; no worker pool, no notifier."""
    rules = wiring.load_rule_list(settings)
    async with AsyncExitStack() as stack:
        state = wiring_state.existing_state(settings)
        if state is not None:
            stack.callback(state.close)
        store = await stack.enter_async_context(
            wiring.open_store(settings, concurrency=1, check=False)
        )
        output = await stack.enter_async_context(
            wiring.open_output_store(settings, store, concurrency=1)
        )
        engine = await stack.enter_async_context(wiring.open_engine(settings))
        index = state.events if state is not None else None
        locator = EventLocator(
            output.read, index=index, engine=engine, window_days=settings.event_lookup_days
        )
        yield locator, rules


@asynccontextmanager
async def ingestor(settings: Settings) -> AsyncIterator[Ingestor]:
    """Just the Ingestor over S3 (tests and benchmarks drive cycles with it)."""
    if not settings.cloudtrail_bucket_name:
        raise NoBucketError("CLOUDTRAIL_BUCKET_NAME is not set")
    async with services(settings, Console(quiet=True)) as svc:
        yield svc.ingestor

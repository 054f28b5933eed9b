"""The commands that reach AWS, Slack or run the daemon: run, backfill, show, detections,
athena, healthcheck. Imported only when one of them runs, so `scan` and `rules` stay light.

AWS refusing (S3 or Athena) is one line and exit 3; an impossible setting is exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from umbrellabot.app import athena_tables, logs, render, wiring, wiring_scale, wiring_state
from umbrellabot.app.cycle import CycleOutcome, backfill, run_once
from umbrellabot.app.daemon import Daemon
from umbrellabot.app.services import Services, lookup
from umbrellabot.cli.output import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    error,
    stderr,
    stdout,
)
from umbrellabot.config import Settings, SettingsError, load_settings
from umbrellabot.errors import UsageError
from umbrellabot.model.layout import LayoutError, days_between
from umbrellabot.query.athena_ddl import DEFAULT_START
from umbrellabot.query.detection_runs import run_detections
from umbrellabot.query.detections import LATE_EVENTS
from umbrellabot.query.lookup import FoundEvent, find_in_folder
from umbrellabot.query.queries import InvalidQueryInput, QueryError
from umbrellabot.query.story import build_story
from umbrellabot.rules.rule import Rule
from umbrellabot.storage.dynamodb.table import StateError
from umbrellabot.storage.s3 import S3AccessError, S3TransientError

T = TypeVar("T")


class _Refused(Exception):
    """AWS refused; already reported."""


def _aws(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; AWS refusals become one line (exit 3), a bad prefix a settings error."""
    try:
        return asyncio.run(work)
    except LayoutError as err:
        raise SettingsError(f"invalid setting CLOUDTRAIL_INITIAL_PREFIX: {err}") from None
    except (S3AccessError, S3TransientError, QueryError, StateError) as err:
        error(str(err))
        raise _Refused from None


def _exit_code(run: Any) -> int:
    try:
        result = run()
    except _Refused:
        return EXIT_CANNOT_RUN
    return int(result)


def _print_outcome(svc: Services, outcome: CycleOutcome) -> None:
    stdout.print(render.cycle_summary(outcome.report, svc.where), soft_wrap=True)
    if outcome.detections:
        stdout.print(
            f"Detections: {len(outcome.detections)} findings, "
            f"{outcome.detection_alerts} new alerts",
            soft_wrap=True,
        )
    for detection_id, reason in outcome.detection_failures.items():
        error(f"detection {detection_id} failed: {reason}")


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.once:
        logs.configure(settings.log_level, settings.log_format)
        return _exit_code(lambda: _aws(Daemon(settings, stdout).run()))  # refused: one line

    def once() -> int:
        svc, outcome = _aws(run_once(settings, stdout, wide=args.wide))
        _print_outcome(svc, outcome)
        return EXIT_OK

    return _exit_code(once)


def cmd_backfill(args: argparse.Namespace) -> int:
    settings = load_settings()
    until = args.until or datetime.now(UTC).date()
    try:
        days = days_between(args.since, until)
    except ValueError as err:
        raise UsageError(f"backfill: {err}") from None
    columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    show_bar = not args.no_progress and stderr.is_terminal

    def work() -> int:
        with Progress(*columns, console=stderr, transient=True, disable=not show_bar) as bar:
            task = bar.add_task("files", total=None)
            svc, outcome = _aws(
                backfill(
                    settings,
                    days,
                    stdout,
                    on_planned=lambda total: bar.update(task, total=total),
                    on_file_done=lambda: bar.advance(task),
                    old_alerts=args.alerts,
                    wide=args.wide,
                )
            )
        _print_outcome(svc, outcome)
        return EXIT_OK

    return _exit_code(work)


def _searched(settings: Settings, indexed: bool) -> str:
    """Where `show` looked, for the line that says it found nothing."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=settings.event_lookup_days)
    if settings.uses_athena():
        engine = f"the Athena table {settings.athena_database}.{settings.athena_table}"
    else:
        engine = f"the enriched files in {settings.enriched_local_path}"
    places = ([f"the event index in {settings.state_dir}"] if indexed else []) + [
        f"{engine} from {first} to {today} (EVENT_LOOKUP_DAYS={settings.event_lookup_days})"
    ]
    return " or ".join(places)


async def _find(
    settings: Settings, event_id: str, folder: Path | None
) -> tuple[FoundEvent | None, list[Rule], str]:
    """The event, the rules to explain it with, and where it was looked for."""
    if folder is not None:
        if not folder.is_dir():
            raise UsageError(f"show --from: no such folder: {folder}")
        rules = wiring.load_rule_list(settings)
        found = await find_in_folder(folder, event_id)
        return found, rules, f"any enriched file under {folder} (every day)"
    async with lookup(settings) as (locator, rules):
        found = await locator.find(event_id)
        return found, rules, _searched(settings, locator.has_index)


async def _show(settings: Settings, event_id: str, as_json: bool, folder: Path | None) -> int:
    try:
        found, rules, searched = await _find(settings, event_id, folder)
    except InvalidQueryInput as err:
        error(str(err))
        return EXIT_USAGE
    if found is None:
        hint = "" if folder else "; an event `scan` wrote elsewhere: show EVENT_ID --from DIR"
        error(f"no event {event_id} in {searched}{hint}")
        return EXIT_FAILED
    if as_json:
        print(orjson.dumps(found.record, option=orjson.OPT_INDENT_2).decode())
    else:
        story = build_story(found.record, rules, found.location)
        stdout.print(render.event_story(story, names=settings.account_names))
        via = {"index": "the event index", "folder": "a search of the folder"}
        stdout.print(f"(found via {via.get(found.via, found.via)})", style="dim")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    return _exit_code(lambda: _aws(_show(settings, args.event_id, args.json, args.from_dir)))


def _key_of(typed: str, settings: Settings) -> str:
    """A key as the logs print it (s3://bucket/key, or its path under CLOUDTRAIL_LOCAL_PATH),
    or bare."""
    if typed.startswith("s3://"):
        return typed.removeprefix("s3://").partition("/")[2]
    folder = settings.cloudtrail_local_path.resolve()
    path = Path(typed)
    if not settings.cloudtrail_bucket_name and path.is_absolute() and path.is_relative_to(folder):
        return path.relative_to(folder).as_posix()
    return typed


def cmd_retry(args: argparse.Namespace) -> int:
    settings = load_settings()
    if bool(args.keys) == bool(args.all):
        raise UsageError("retry: name the files (KEY ...) or give --all, not both")
    state = wiring_state.existing_state(settings)
    if state is None:
        error(f"no state in {settings.state_dir} (STATE_DIR): nothing was given up on there")
        return EXIT_FAILED
    try:
        wanted = None if args.all else [_key_of(key, settings) for key in args.keys]
        back = state.files.retry(wanted)
    finally:
        state.close()
    for key in back:
        stdout.print(render.safe(key, 2000))
    queued = settings.ingest_mode == "sqs" and bool(back)
    if queued:  # announced again: the queue's workers take them now
        asyncio.run(wiring_scale.announce_again(settings, back))
    them = "them" if len(back) != 1 else "it"
    then = f"{them} announced on SQS_QUEUE_URL" if queued else f"the next cycle processes {them}"
    stdout.print(
        f"{len(back)} file{'s' if len(back) != 1 else ''} put back: {then} again", style="bold"
    )
    missing = [key for key in wanted or () if key not in back]
    for key in missing:
        error(f"not a file given up on: {key}")
    return EXIT_FAILED if missing else EXIT_OK


def _detection_paths(settings: Settings, args: argparse.Namespace) -> list[Any]:
    return list(args.paths) if args.paths else wiring.detection_paths(settings)


def cmd_detections_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    table = Table(title="Detections", title_justify="left")
    for column in ("id", "severity", "window", "threshold", "title"):
        table.add_column(column)
    for detection in wiring.load_all_detections(settings, _detection_paths(settings, args)):
        table.add_row(
            detection.id,
            render.severity_text(detection.severity),
            detection.window_text,
            str(detection.threshold),
            detection.title,
        )
    stdout.print(table)
    return EXIT_OK


def _history(args: argparse.Namespace) -> tuple[datetime | None, timedelta | None]:
    """`--since D [--until D]` as the moment a run stands at (the end of --until, or now) and
    how far back its windows go; (None, None) for the usual run over the last hour."""
    if args.since is None:
        if args.until is not None:
            raise UsageError("detections run: --until needs --since")
        return None, None
    now = datetime.now(UTC)
    until = args.until or now.date()
    if until < args.since:
        raise UsageError(f"detections run: --until {until} is before --since {args.since}")
    end = min(datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC), now)
    start = datetime.combine(args.since, datetime.min.time(), UTC)
    return end, end - start


async def _check_data(settings: Settings) -> None:
    """A data folder or table that does not exist is an error (exit 2, exit 3), not "0
    findings"."""
    if not settings.uses_athena():
        folder = settings.enriched_local_path
        if not folder.is_dir():
            raise UsageError(
                f"ENRICHED_LOCAL_PATH {folder} does not exist: nothing to run the detections"
                " over (`umbrellabot scan SOURCE --out DIR`, then ENRICHED_LOCAL_PATH=DIR)"
            )
        return
    from umbrellabot.query.athena_catalog import CatalogRefused

    async with wiring.open_athena_parts(settings) as (_, catalog):
        try:
            family = await catalog.family()
        except CatalogRefused:
            return  # cannot tell; Athena itself says so if the table is missing
    if settings.athena_table not in family:
        raise QueryError(
            f"the Athena table {settings.athena_database}.{settings.athena_table} does not"
            " exist: `umbrellabot athena setup` creates it"
        )


async def _detect(settings: Settings, paths: list[Any], args: argparse.Namespace) -> int:
    from umbrellabot.query.detection_runs import DetectionRunError, alerts_for

    detections = wiring.load_all_detections(settings, paths)
    now, back = _history(args)
    failed: dict[str, str] = {}
    await _check_data(settings)
    async with wiring.open_engine(settings) as engine:
        try:
            results = await run_detections(engine, detections, now, late_events=back or LATE_EVENTS)
        except DetectionRunError as err:
            results, failed = err.results, err.failures
    for result in results:
        stdout.print(render.safe(result.summary(), 2000))
    span = f" from {args.since} to {args.until or datetime.now(UTC).date()}" if back else ""
    stdout.print(
        f"{len(detections)} detections run on {engine.name}{span}: {len(results)} findings,"
        f" {len(failed)} failed",
        style="bold",
    )
    for detection_id, reason in failed.items():
        error(f"detection {detection_id} failed: {reason}")
    if args.post and results:
        alerts = alerts_for(results, settings.alert_min_severity)
        new, delivered = await _post(settings, alerts, wide=args.wide)
        stdout.print(f"{new} new alerts (the others were told before), {delivered} delivered")
    return EXIT_FAILED if failed else EXIT_OK


async def _post(settings: Settings, alerts: list[Any], *, wide: bool) -> tuple[int, int]:
    """The findings' alerts through the outbox (never twice) and the configured notifier: how
    many were new, how many were delivered."""
    from umbrellabot.app.delivery import flush_outbox

    state = wiring_state.open_state(settings)
    try:
        new = await asyncio.to_thread(state.outbox.add_alerts, alerts)
        notifier = wiring.notifier_for(settings, state, stdout, wide=wide)
        return new, await flush_outbox(state.outbox, notifier, triage=state.triage)
    finally:
        state.close()


def cmd_detections_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    paths = _detection_paths(settings, args)
    return _exit_code(lambda: _aws(_detect(settings, paths, args)))


def cmd_athena_ddl(args: argparse.Namespace) -> int:
    settings = load_settings()
    wiring.require_bucket(settings)
    start = args.since or DEFAULT_START
    if args.accounts:  # offline: the layout as given, no AWS call
        print(_offline_ddl(settings, args.accounts, args.org, start))
        return EXIT_OK
    if args.org:
        raise UsageError("athena ddl: --org goes with --account (without, the bucket is read)")

    def work() -> int:
        layouts = _aws(athena_tables.discover_layouts(settings))
        statements = _aws(athena_tables.table_ddls(settings, layouts, start))
        if len(statements) == 1:
            print(statements[0])
        else:  # one table per layout: statements Athena's console runs one at a time
            print("\n\n".join(f"{ddl};" for ddl in statements))
        return EXIT_OK

    return _exit_code(work)


def _offline_ddl(settings: Settings, accounts: list[str], org: str | None, start: Any) -> str:
    from umbrellabot.query import athena_setup
    from umbrellabot.query.athena_layouts import offline_layout

    try:
        layout = offline_layout(settings.cloudtrail_initial_prefix, accounts, org)
    except LayoutError as err:
        raise SettingsError(f"invalid setting CLOUDTRAIL_INITIAL_PREFIX: {err}") from None
    table = athena_tables.athena_table(settings)
    [ddl] = athena_setup.table_ddls(athena_setup.tables_for(table, [layout]), table, start)
    return ddl


def cmd_athena_setup(args: argparse.Namespace) -> int:
    settings = load_settings()
    wiring.require_bucket(settings)

    def work() -> int:
        for line in _aws(athena_tables.setup_table(settings, args.since or DEFAULT_START)):
            print(line)
        return EXIT_OK

    return _exit_code(work)


def cmd_healthcheck(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.health_port:
        error("HEALTH_PORT is 0: the health server is off")
        return EXIT_USAGE
    url = f"http://127.0.0.1:{settings.health_port}/healthz"
    with (
        contextlib.suppress(urllib.error.URLError, OSError),
        urllib.request.urlopen(url, timeout=4) as response,
    ):
        if response.status == 200:
            return EXIT_OK
    error(f"no healthy answer from {url}")
    return EXIT_FAILED

"""The `umbrellabot` command line. Thin: parse arguments, wire components, render, exit code.

Exit codes: 0 success; 1 the work ran but something in it failed (a file, a rule test);
2 bad usage, settings or rules (one clear line per problem, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from umbrellabot import __version__, render
from umbrellabot.components import build_geo, load_rule_list, load_rule_set
from umbrellabot.config import Settings, SettingsError, load_settings
from umbrellabot.delivery import ConsoleNotifier, Notifier
from umbrellabot.errors import UsageError
from umbrellabot.rules import RuleError, Severity
from umbrellabot.ruletest import run_rule_tests

if TYPE_CHECKING:
    from umbrellabot.ingest import CycleReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_FILES = 20  # below this a bar only flickers

Handler = Callable[[argparse.Namespace], int]
# Piped output gets room for a whole eventID per row instead of the 80 columns rich assumes.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False)


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_scan(args: argparse.Namespace) -> int:
    from umbrellabot.scan import find_log_files, scan  # the enrichment stack loads on demand

    settings = load_settings()
    rules = load_rule_set(settings, args.rules)
    geo = build_geo(settings)
    log_files = find_log_files(args.sources)
    min_severity = args.min_severity or settings.alert_min_severity
    show_bar = not args.no_progress and stderr.is_terminal and len(log_files) >= PROGRESS_MIN_FILES
    columns = (TextColumn("enriching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not show_bar) as progress:
        task = progress.add_task("files", total=len(log_files))
        summary = scan(
            log_files,
            args.out,
            rules,
            geo,
            alert_min_severity=min_severity,
            on_file_done=lambda _: progress.advance(task),
        )
    stdout.print(render.summary_lines(summary, str(args.out)), soft_wrap=True)
    if summary.alerts:
        stdout.print(render.alert_table(summary.alerts, args.limit))
    else:
        stdout.print(f"No alerts at or above {min_severity.label}.")
    return EXIT_FAILED if summary.failed else EXIT_OK


EXIT_CANNOT_RUN = 3  # S3 refused or cannot serve the bucket: nothing was processed


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _run_cycle(
    settings: Settings, work: Callable[[Notifier], Coroutine[Any, Any, tuple[CycleReport, int]]]
) -> int:
    """Run one cycle coroutine; S3 and layout problems become one line and an exit code."""
    from umbrellabot.layout import LayoutError
    from umbrellabot.s3 import S3AccessError

    notifier = ConsoleNotifier(stdout)
    try:
        report, _ = asyncio.run(work(notifier))
    except LayoutError as err:
        raise SettingsError(f"invalid setting CLOUDTRAIL_INITIAL_PREFIX: {err}") from None
    except S3AccessError as err:
        _error(str(err))
        return EXIT_CANNOT_RUN
    stdout.print(
        render.cycle_summary(report, settings.cloudtrail_bucket_name or ""), soft_wrap=True
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from umbrellabot import daemon

    if not args.once:
        raise UsageError("run: only --once is available in this version (one cycle, then exit)")
    settings = load_settings()
    return _run_cycle(settings, lambda notifier: daemon.run_once(settings, notifier))


def cmd_backfill(args: argparse.Namespace) -> int:
    from umbrellabot import daemon
    from umbrellabot.layout import days_between

    settings = load_settings()
    until = args.until or datetime.now(UTC).date()
    try:
        days = days_between(args.since, until)
    except ValueError as err:
        raise UsageError(f"backfill: {err}") from None
    columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    show_bar = not args.no_progress and stderr.is_terminal
    with Progress(*columns, console=stderr, transient=True, disable=not show_bar) as progress:
        task = progress.add_task("files", total=None)
        return _run_cycle(
            settings,
            lambda notifier: daemon.backfill(
                settings,
                days,
                notifier,
                on_planned=lambda total: progress.update(task, total=total),
                on_file_done=lambda: progress.advance(task),
            ),
        )


def cmd_rules_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        rules = load_rule_list(settings, args.paths)
    except RuleError as err:
        _print_rule_problems(err)
        return EXIT_FAILED
    enabled = sum(rule.enabled for rule in rules)
    stdout.print(f"{len(rules)} rules OK ({enabled} enabled)")
    return EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    settings = load_settings()
    rules = load_rule_list(settings, args.paths)
    results = run_rule_tests(rules, build_geo(settings).country)
    stdout.print(render.test_report(rules, results, verbose=args.verbose))
    return EXIT_FAILED if any(not result.passed for result in results) else EXIT_OK


def cmd_rules_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    stdout.print(render.rules_table(load_rule_list(settings, args.paths)))
    return EXIT_OK


def _athena_work(work: Coroutine[Any, Any, Any]) -> Any:
    """Run an Athena coroutine. An impossible CLOUDTRAIL_INITIAL_PREFIX is a settings error;
    S3 or Athena refusing is one line and None (the caller exits 3)."""
    from umbrellabot.layout import LayoutError
    from umbrellabot.query import QueryError
    from umbrellabot.s3 import S3AccessError

    try:
        return asyncio.run(work)
    except LayoutError as err:
        raise SettingsError(f"invalid setting CLOUDTRAIL_INITIAL_PREFIX: {err}") from None
    except (S3AccessError, QueryError) as err:
        _error(str(err))
        return None


def cmd_athena_ddl(args: argparse.Namespace) -> int:
    from umbrellabot import athena
    from umbrellabot.athena_ddl import DEFAULT_START

    settings = load_settings()
    athena.require_bucket(settings)
    layout = _athena_work(athena.discover_layout(settings))
    if layout is None:
        return EXIT_CANNOT_RUN
    print(athena.table_ddl(settings, layout, args.since or DEFAULT_START))
    return EXIT_OK


def cmd_athena_setup(args: argparse.Namespace) -> int:
    from umbrellabot import athena
    from umbrellabot.athena_ddl import DEFAULT_START

    settings = load_settings()
    athena.require_bucket(settings)
    done = _athena_work(athena.setup_table(settings, args.since or DEFAULT_START))
    if done is None:
        return EXIT_CANNOT_RUN
    for line in done:
        print(line)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="umbrellabot",
        description="Enrich CloudTrail logs with declarative rules and tell people what matters.",
    )
    parser.add_argument("--version", action="version", version=f"umbrellabot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan_cmd = commands.add_parser(
        "scan",
        help="enrich local CloudTrail log files and print the alerts",
        description="Enrich CloudTrail log files (.json.gz or .json) from files or folder trees.",
    )
    scan_cmd.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    scan_cmd.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for the enriched copies (same relative paths, .json.gz)",
    )
    scan_cmd.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="PATH",
        help="rule file or folder (repeatable); overrides RULES_PATH",
    )
    scan_cmd.add_argument(
        "--min-severity",
        type=_severity,
        metavar="SEVERITY",
        help="lowest severity shown as an alert (default ALERT_MIN_SEVERITY)",
    )
    scan_cmd.add_argument(
        "--limit",
        type=int,
        default=100,
        metavar="N",
        help="show at most N events with alerts (0: all; default 100)",
    )
    scan_cmd.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    scan_cmd.set_defaults(handler=cmd_scan)

    run_cmd = commands.add_parser(
        "run",
        help="ingest new CloudTrail files from S3 (--once: one cycle, then exit)",
        description="Enrich new CloudTrail log files of CLOUDTRAIL_BUCKET_NAME. Exit 0 when the"
        " cycle completed (files that failed are reported), 2 on bad settings, 3 when S3 refused"
        " or cannot serve the bucket.",
    )
    run_cmd.add_argument("--once", action="store_true", help="run one ingest cycle and exit")
    run_cmd.set_defaults(handler=cmd_run)

    backfill_cmd = commands.add_parser(
        "backfill",
        help="process a historical date range of CloudTrail files from S3",
        description="Process the day folders from --since to --until (UTC, default today)"
        " through the same path as `run`; files done before are skipped, so it is safe to"
        " interrupt and run again.",
    )
    backfill_cmd.add_argument("--since", type=_date, required=True, metavar="YYYY-MM-DD")
    backfill_cmd.add_argument("--until", type=_date, metavar="YYYY-MM-DD")
    backfill_cmd.add_argument(
        "--no-progress", action="store_true", help="never draw a progress bar"
    )
    backfill_cmd.set_defaults(handler=cmd_backfill)

    rules_cmd = commands.add_parser("rules", help="check, test and list rules")
    rule_actions = rules_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("check", cmd_rules_check, "load and validate rules; exit 1 if any is invalid"),
        ("test", cmd_rules_test, "run every rule's inline test cases; exit 1 on a failure"),
        ("list", cmd_rules_list, "print id, severity and title of every rule"),
    ):
        action = rule_actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "paths",
            nargs="*",
            type=Path,
            metavar="PATH",
            help="rule files or folders (default RULES_PATH or the default pack)",
        )
        if name == "test":
            action.add_argument("--verbose", "-v", action="store_true", help="list passing rules")
        action.set_defaults(handler=handler)

    athena_cmd = commands.add_parser("athena", help="the Athena table over the enriched copies")
    athena_actions = athena_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        (
            "ddl",
            cmd_athena_ddl,
            "print CREATE EXTERNAL TABLE (partition projection) for the accounts in the bucket",
        ),
        (
            "setup",
            cmd_athena_setup,
            "create the Athena database and table if missing and update the projected accounts;"
            " exit 3 when S3 or Athena refuses",
        ),
    ):
        action = athena_actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--since",
            type=_date,
            metavar="YYYY-MM-DD",
            help="first day of the date projection (default 2013-11-01, before any CloudTrail log)",
        )
        action.set_defaults(handler=handler)
    return parser


def _error(message: str) -> None:
    """One unwrapped line on stderr, whatever the terminal width."""
    print(f"umbrellabot: {message}", file=sys.stderr)


def _print_rule_problems(err: RuleError) -> None:
    for problem in err.problems:
        _error(f"invalid rule: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except SettingsError as err:
        _error(str(err))
    except RuleError as err:
        _print_rule_problems(err)
    except UsageError as err:
        _error(str(err))
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

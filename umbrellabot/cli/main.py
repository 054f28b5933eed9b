"""The `umbrellabot` command line. Thin: parse arguments, ask app.wiring, render, exit code.

Exit codes: 0 success; 1 the work ran but something in it failed (a file, a rule test);
2 bad usage, settings or rules (one clear line per problem, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from umbrellabot import __version__
from umbrellabot.app import render
from umbrellabot.app.alert_table import print_alerts
from umbrellabot.app.wiring import build_geo, load_rule_list, load_rule_set
from umbrellabot.cli.output import (  # the exit codes are re-exported for scripts and tests
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    stderr,
    stdout,
)
from umbrellabot.cli.output import error as _error
from umbrellabot.config import SettingsError, load_settings
from umbrellabot.errors import ProblemsError, UsageError
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import default_rules_path
from umbrellabot.rules.testing import run_rule_tests

__all__ = ["EXIT_CANNOT_RUN", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
PROGRESS_MIN_FILES = 20  # below this a bar only flickers

Handler = Callable[[argparse.Namespace], int]


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_scan(args: argparse.Namespace) -> int:
    from umbrellabot.cli.scan import find_log_files, scan, summary_lines

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
    stdout.print(summary_lines(summary, str(args.out)), soft_wrap=True)
    if summary.alerts:
        print_alerts(stdout, summary.alerts, args.limit, wide=args.wide)
    else:
        stdout.print(f"No alerts at or above {min_severity.label}.")
    return EXIT_FAILED if summary.failed else EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        rules = load_rule_list(settings, args.paths)
    except ProblemsError as err:
        _print_problems(err)
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
    rules = load_rule_list(settings, args.paths)
    stdout.print(render.rules_table(rules, default_rules_path()), soft_wrap=False)
    return EXIT_OK


def _wide_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--wide",
        action="store_true",
        help="every column of the alert table, however narrow the terminal",
    )


def _rules_new(args: argparse.Namespace) -> int:
    from umbrellabot.cli.rules_new import cmd_rules_new

    return cmd_rules_new(args)


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
    _wide_option(scan_cmd)
    scan_cmd.set_defaults(handler=cmd_scan)

    _service_commands(commands)

    rules_cmd = commands.add_parser("rules", help="check, test and list rules")
    rule_actions = rules_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("check", cmd_rules_check, "load and validate rules; exit 1 if any is invalid"),
        ("test", cmd_rules_test, "run every rule's inline test cases; exit 1 on a failure"),
        ("list", cmd_rules_list, "print every rule: id, severity, title and where it came from"),
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
    new = rule_actions.add_parser(
        "new",
        help="write a commented rule skeleton with a matching and a non-matching test case",
        description="Write ID.yaml in the current folder (never over an existing file): a rule"
        " with every key explained, and test cases `rules test` passes.",
    )
    new.add_argument("id", metavar="ID", help="the new rule's id (also the file name)")
    new.add_argument("out", nargs="?", metavar="FILE", help="where to write it; - for stdout")
    new.set_defaults(handler=_rules_new)

    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _service_commands(commands: Any) -> None:
    """The commands that reach AWS, Slack or the daemon (implemented in cli/service.py)."""
    run = commands.add_parser(
        "run",
        help="the daemon: scheduled ingest, detections, Slack alerts and the bot",
        description="Run until SIGTERM/SIGINT: an ingest cycle at start and on SCHEDULE or every"
        " POLL_INTERVAL seconds, the SQL detections and alert delivery after each, the Slack bot"
        " (with both Slack tokens) and /healthz, /readyz, /metrics on HEALTH_PORT. Without"
        " CLOUDTRAIL_BUCKET_NAME it watches CLOUDTRAIL_LOCAL_PATH with DuckDB. --once: one"
        " cycle, then exit 0 (files that failed are reported), 2 on bad settings, 3 when AWS"
        " refuses.",
    )
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    _wide_option(run)
    run.set_defaults(handler=_service("cmd_run"))

    backfill = commands.add_parser(
        "backfill",
        help="process a historical date range of CloudTrail files",
        description="Process the day folders from --since to --until (UTC, default today)"
        " through the same path as `run`; files done before are skipped, so it is safe to"
        " interrupt and run again.",
    )
    backfill.add_argument("--since", type=_date, required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--until", type=_date, metavar="YYYY-MM-DD")
    backfill.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    _wide_option(backfill)
    backfill.add_argument(
        "--alerts",
        action="store_true",
        help="also alert on events older than STATE_RETENTION_DAYS (by default they are"
        " enriched and indexed but not alerted: their alerts may have been told long ago)",
    )
    backfill.set_defaults(handler=_service("cmd_backfill"))

    retry = commands.add_parser(
        "retry",
        help="process log files that were given up on again",
        description="Give log files that were given up on (after MAX_FILE_ATTEMPTS failed reads,"
        " or three dead workers) their attempts back: the next cycle that lists them (the"
        " daemon's, run --once or backfill) processes them again. KEY is the file's key, or its"
        " s3://bucket/key as the logs print it. Exit 1 when a KEY was not given up on.",
    )
    retry.add_argument("keys", nargs="*", metavar="KEY")
    retry.add_argument("--all", action="store_true", help="every file given up on")
    retry.set_defaults(handler=_service("cmd_retry"))

    show = commands.add_parser(
        "show",
        help="everything about one event, and why it was flagged",
        description="Find an event by its eventID (the state index, then the query engine over"
        " EVENT_LOOKUP_DAYS) and print it with the rules that match it and why. Exit 1 when not"
        " found, 2 for something that is not an eventID.",
    )
    show.add_argument("event_id", metavar="EVENT_ID")
    show.add_argument("--json", action="store_true", help="print only the enriched record")
    show.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="search every enriched file in DIR (what `scan --out DIR` wrote), every day",
    )
    show.set_defaults(handler=_service("cmd_show"))

    detections = commands.add_parser("detections", help="the scheduled SQL detections")
    actions = detections.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("run", "run every detection (the last hour, or --since/--until) and print the findings"),
        ("list", "print id, severity, window and title of every detection"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "paths",
            nargs="*",
            type=Path,
            metavar="PATH",
            help="detection files or folders (default DETECTIONS_PATH)",
        )
        if name == "run":
            action.add_argument(
                "--since",
                type=_date,
                metavar="YYYY-MM-DD",
                help="run every window from this day (UTC) on, not only the last hour's",
            )
            action.add_argument(
                "--until", type=_date, metavar="YYYY-MM-DD", help="last day (default today)"
            )
            action.add_argument(
                "--post",
                action="store_true",
                help="also deliver the findings as alerts (once each: the outbox remembers)",
            )
            _wide_option(action)
        action.set_defaults(handler=_service(f"cmd_detections_{name}"))

    athena = commands.add_parser(
        "athena", help="the Athena table over the enriched copies (one per layout in the bucket)"
    )
    actions = athena.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        (
            "ddl",
            "print CREATE EXTERNAL TABLE (partition projection) for the accounts in the bucket,"
            " one per layout",
        ),
        (
            "setup",
            "create the Athena database and tables (one per layout) if missing and update the"
            " projected accounts; exit 3 when S3 or Athena refuses",
        ),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--since",
            type=_date,
            metavar="YYYY-MM-DD",
            help="first day of the date projection (default 2013-11-01)",
        )
        if name == "ddl":
            action.add_argument(
                "--account",
                dest="accounts",
                action="append",
                metavar="ID",
                help="an account to project (repeatable): print the DDL offline, without"
                " reading the bucket or needing AWS credentials",
            )
            action.add_argument(
                "--org", metavar="ID", help="with --account: the organization trail's o-… id"
            )
        action.set_defaults(handler=_service(f"cmd_athena_{name}"))

    state = commands.add_parser("state", help="the durable state (STATE_BACKEND)")
    text = (
        "make the state (STATE_BACKEND=dynamodb: the table), before any worker; exit 3 if refused"
    )
    setup = state.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "setup", help=text, description=text
    )
    setup.set_defaults(handler=_state_setup)

    health = commands.add_parser(
        "healthcheck", help="exit 0 when the daemon's /healthz answers (Docker HEALTHCHECK)"
    )
    health.set_defaults(handler=_service("cmd_healthcheck"))


def _state_setup(args: argparse.Namespace) -> int:
    from umbrellabot.cli.state import cmd_state_setup

    return cmd_state_setup(args)


def _print_problems(err: ProblemsError) -> None:
    for problem in err.problems:
        _error(f"{err.label}: {problem}")


def _service(name: str) -> Handler:
    """A command of cli/service.py, imported when it runs (AWS and Slack load only then)."""

    def run(args: argparse.Namespace) -> int:
        from umbrellabot.cli import service as cli_service

        handler: Handler = getattr(cli_service, name)
        return handler(args)

    return run


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
    except ProblemsError as err:
        _print_problems(err)
    except UsageError as err:
        _error(str(err))
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

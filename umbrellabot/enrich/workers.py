"""CPU-bound work for the ingest cycle, run in worker processes (or one thread) so that the
event loop, which the Slack bot shares, is never blocked by enrichment.

Each worker loads the rule set once (`init_worker` in a process, `load_worker_rules` for the one
thread); the functions take and return only plain, picklable values.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from umbrellabot.enrich.enrichment import FileResult, enrich_stream
from umbrellabot.enrich.geoip import OfflineGeo
from umbrellabot.enrich.reader import read_records
from umbrellabot.model.severity import Severity
from umbrellabot.rules.rule import load_rules
from umbrellabot.rules.ruleset import RuleSet

_rules: RuleSet | None = None
_geo = OfflineGeo()


def init_worker(
    rule_paths: list[str], variables: dict[str, Any], sigma_skip_unsupported: bool = False
) -> None:
    """The initializer of a worker process: Ctrl-C reaches the whole process group, and the
    daemon decides what stops, and when, so the worker ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_worker_rules(rule_paths, variables, sigma_skip_unsupported)


def load_worker_rules(
    rule_paths: list[str], variables: dict[str, Any], sigma_skip_unsupported: bool = False
) -> None:
    """Load the rule set once (in a worker process, or for the one enrichment thread)."""
    global _rules
    paths = [Path(path) for path in rule_paths]
    # the daemon said which Sigma rules it skipped; a worker stays quiet about them
    _rules = RuleSet(
        load_rules(paths, variables, sigma_skip_unsupported=sigma_skip_unsupported, quiet=True)
    )


def source_addresses(source: str, max_record_bytes: int | None = None) -> set[str]:
    """The distinct sourceIPAddress values of a log file (for ipstack's prefetch)."""
    with Path(source).open("rb") as raw:
        return {
            address
            for record in read_records(raw, max_record_bytes=max_record_bytes)
            if isinstance(address := record.get("sourceIPAddress"), str)
        }


def enrich_file(
    source: str,
    target: str,
    source_name: str,
    alert_min_severity: int,
    countries: Mapping[str, str | None] | None = None,
    max_record_bytes: int | None = None,
) -> FileResult:
    """Enrich one downloaded log file into `target`. Raises reader.LogFormatError."""
    if _rules is None:
        raise RuntimeError("init_worker() was not called in this worker")
    offline = _geo.country
    if countries:
        known = dict(countries)

        def country_of(address: str | None) -> str | None:
            return known[address] if address in known else offline(address)
    else:
        country_of = offline
    with Path(source).open("rb") as raw, Path(target).open("wb") as sink:
        return enrich_stream(
            raw,
            sink,
            _rules,
            country_of,
            alert_min_severity=Severity(alert_min_severity),
            source_name=source_name,
            index_events=True,
            max_record_bytes=max_record_bytes,
        )

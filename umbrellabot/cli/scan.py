"""`umbrellabot scan`: the local-folder adapter. Finds CloudTrail log files under files and
folders (S3 key layout or flat), enriches each into an output folder at the same relative path,
and sums up what happened. One bad file is reported and skipped; the others still complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rich.console import RenderableType
from rich.text import Text

from umbrellabot.app.render import problem_line
from umbrellabot.enrich.enrichment import MAX_RECORD_BYTES, FileResult, enrich_stream
from umbrellabot.enrich.geoip import CountryLookup
from umbrellabot.enrich.reader import LogFormatError, read_records
from umbrellabot.errors import UsageError
from umbrellabot.model.alerts import Alert
from umbrellabot.model.layout import AWS_LOGS, is_digest, is_log_name
from umbrellabot.model.severity import Severity
from umbrellabot.query.queries import InvalidQueryInput, valid_event_id
from umbrellabot.rules.ruleset import RuleSet


class SourceError(UsageError):
    """A SOURCE given on the command line that does not exist."""


@dataclass(frozen=True)
class LogFile:
    path: Path
    relative: PurePosixPath  # where the enriched copy goes under the output folder

    @property
    def output_relative(self) -> PurePosixPath:
        name = self.relative.name
        if not name.endswith(".gz"):
            name += ".gz"
        return self.relative.with_name(name)


@dataclass
class ScanSummary:
    files: int = 0
    records: int = 0
    flagged: int = 0
    by_severity: Counter[Severity] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def skip_reason(path: PurePosixPath | Path) -> str | None:
    """Why a CloudTrail file is not an event log, or None."""
    text = path.as_posix()
    if is_digest(text):
        return "CloudTrail-Digest file (integrity digest, not events)"
    return None


def _relative_for_file(path: Path) -> PurePosixPath:
    parts = path.resolve().parts
    if AWS_LOGS in parts:  # keep the S3 key layout from AWSLogs/ on
        return PurePosixPath(*parts[parts.index(AWS_LOGS) :])
    return PurePosixPath(path.name)


def find_log_files(sources: Sequence[Path]) -> list[LogFile]:
    """Every log file under `sources`, sorted per source; raises SourceError for a missing one."""
    missing = [str(source) for source in sources if not source.exists()]
    if missing:
        raise SourceError(f"no such file or folder: {', '.join(missing)}")
    found: list[LogFile] = []
    for source in sources:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and is_log_name(path.name):
                    found.append(LogFile(path, PurePosixPath(path.relative_to(source).as_posix())))
        else:
            found.append(LogFile(source, _relative_for_file(source)))
    return found


def _prefetch_countries(path: Path, geo: CountryLookup) -> None:
    """ipstack is asked ahead of enrichment, once per distinct address of the file."""
    with path.open("rb") as raw:
        addresses = {
            record["sourceIPAddress"]
            for record in read_records(raw, max_record_bytes=MAX_RECORD_BYTES)
            if isinstance(record.get("sourceIPAddress"), str)
        }
    asyncio.run(geo.prefetch(addresses))


def enrich_file(
    log_file: LogFile,
    out_dir: Path,
    rules: RuleSet,
    geo: CountryLookup,
    alert_min_severity: Severity,
) -> tuple[Path, FileResult]:
    """Enrich one file into `out_dir`; the output is complete or absent, never partial."""
    target = out_dir / Path(*log_file.output_relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if geo.prefetches:
        _prefetch_countries(log_file.path, geo)
    handle, temp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as sink, log_file.path.open("rb") as source:
            result = enrich_stream(
                source,
                sink,
                rules,
                geo.country,
                alert_min_severity=alert_min_severity,
                source_name=str(log_file.path),
            )
        Path(temp_name).replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp_name).unlink()
        raise
    return target, result


def scan(
    log_files: Iterable[LogFile],
    out_dir: Path,
    rules: RuleSet,
    geo: CountryLookup,
    *,
    alert_min_severity: Severity = Severity.HIGH,
    on_file_done: Callable[[LogFile], None] | None = None,
) -> ScanSummary:
    summary = ScanSummary()
    for log_file in log_files:
        try:
            reason = skip_reason(log_file.relative)
            if reason:
                summary.skipped.append((str(log_file.path), reason))
                continue
            try:
                _, outcome = enrich_file(log_file, out_dir, rules, geo, alert_min_severity)
            except LogFormatError as err:
                summary.failed.append((str(log_file.path), str(err)))
                continue
            except OSError as err:
                summary.failed.append((str(log_file.path), err.strerror or str(err)))
                continue
            summary.files += 1
            summary.records += outcome.records
            summary.flagged += outcome.flagged
            summary.by_severity.update(outcome.by_severity)
            summary.alerts.extend(outcome.alerts)
        finally:
            if on_file_done is not None:
                on_file_done(log_file)
    return summary


def _is_event_id(text: str | None) -> bool:
    """Only a real eventID goes into a command line for the user to paste."""
    try:
        return text is not None and bool(valid_event_id(text))
    except InvalidQueryInput:
        return False


def summary_lines(summary: ScanSummary, out_dir: str) -> RenderableType:
    lines = Text()
    lines.append(f"Files enriched: {summary.files}", style="bold")
    lines.append(f"   records: {summary.records:,}   flagged: {summary.flagged:,}\n")
    counts = ", ".join(
        f"{summary.by_severity[s]} {s.label}" for s in reversed(Severity) if summary.by_severity[s]
    )
    lines.append(f"Rule matches by severity: {counts or 'none'}\n")
    lines.append(f"Enriched copies in: {out_dir}\n")
    example = next((a.event_id for a in summary.alerts if _is_event_id(a.event_id)), None)
    if example is not None:
        lines.append("Everything about one event: ", style="dim")
        lines.append(f"umbrellabot show {example} --from {shlex.quote(out_dir)}\n")
    for path, why in summary.skipped:
        problem_line(lines, "Skipped", "yellow", path, why)
    for path, reason in summary.failed:
        problem_line(lines, "Failed", "bold red", path, reason)
    return lines

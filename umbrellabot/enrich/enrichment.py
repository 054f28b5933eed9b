"""Enrichment: mark every record with the rules it matches. Pure apart from the file objects
handed in, which are read and written as streams (a file is never held whole).

The enriched copy of a record is the record itself, every field unchanged, plus `xpriority`
(highest matched severity, upper case), `xrules` (matched rule ids) and `xcountry_code`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import orjson

from umbrellabot.enrich.reader import OversizeRecord, read_texted
from umbrellabot.enrich.writer import EnrichedWriter
from umbrellabot.model.alerts import Alert
from umbrellabot.model.facts import EventFacts, bounded
from umbrellabot.model.own_alerts import RECORD_TOO_LARGE, record_too_large
from umbrellabot.model.records import Event, Record
from umbrellabot.model.schema import ENRICHMENT_FIELDS
from umbrellabot.model.severity import Severity
from umbrellabot.model.triage import QuietKey
from umbrellabot.rules.context import context_of
from umbrellabot.rules.rule import Rule
from umbrellabot.rules.ruleset import RuleSet

CountryOf = Callable[[str | None], str | None]
EVENT_ID_CHARS = 256  # longer is no CloudTrail eventID: not indexed
MAX_RECORD_BYTES = 16 << 20
TOO_LARGE_MARK = orjson.dumps({"xpriority": Severity.HIGH.name, "xrules": [RECORD_TOO_LARGE]})


@dataclass
class FileResult:
    """What enriching one log file produced."""

    records: int = 0
    flagged: int = 0  # records that matched at least one rule
    by_severity: Counter[Severity] = field(default_factory=Counter)  # rule matches, all of them
    alerts: list[Alert] = field(default_factory=list)  # at or above the alert threshold
    bytes_out: int = 0
    # (eventID, eventTime, xpriority) of every record with an eventID, when asked for
    events: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    quiet: Counter[QuietKey] = field(default_factory=Counter)  # matches below the threshold


def alert_for(event: Event, rule: Rule, source_file: str | None = None) -> Alert:
    """What people are told about `event`, which `rule` flagged."""
    return Alert(
        **EventFacts.of(event).fact_values(),
        rule_id=rule.id,
        rule_title=rule.title,
        severity=rule.severity,
        runbook=rule.runbook,
        author=rule.author,
        source_file=source_file,
        context=context_of(rule.context, event),
        rule_kind=rule.kind,
    )


def quiet_key(event: Event, rule: Rule) -> QuietKey:
    time = event.record.get("eventTime")
    day = time[:10] if isinstance(time, str) and len(time) >= 10 else "unknown"
    principal = bounded(event.principal, 200) or ""
    account = bounded(event.account, 20) or ""
    return QuietKey(day, rule.id, int(rule.severity), account, principal)


def _enriched_before(record: Record) -> bool:
    return "xrules" in record or "xpriority" in record or "xcountry_code" in record


def enrich_record(
    record: Record, rules: RuleSet, country_of: CountryOf
) -> tuple[Event, list[Rule]]:
    """Add the x-fields to `record` (in place) and return the event and the rules it matched."""
    source = record.get("sourceIPAddress")
    event = Event(record, country_of(source) if isinstance(source, str) else None)
    if _enriched_before(record):
        for name in ENRICHMENT_FIELDS:  # a record enriched before is enriched afresh
            record.pop(name, None)
    matched = rules.match(event)
    if matched:
        record["xpriority"] = max(rule.severity for rule in matched).name
        record["xrules"] = [rule.id for rule in matched]
    if event.country is not None:
        record["xcountry_code"] = event.country
    return event, matched


def enrich_stream(
    source: BinaryIO,
    sink: BinaryIO,
    rules: RuleSet,
    country_of: CountryOf,
    *,
    alert_min_severity: Severity = Severity.HIGH,
    source_name: str | None = None,
    compresslevel: int | None = None,
    index_events: bool = False,
    max_record_bytes: int | None = MAX_RECORD_BYTES,
) -> FileResult:
    """Read a CloudTrail log file from `source`, write its enriched JSON lines (gzip) to `sink`.

    Raises reader.LogFormatError for a file that cannot be read; what was written to `sink`
    by then must be discarded by the caller (see scan/ingest, which write to a temporary file).
    A record over `max_record_bytes` is copied unparsed, flagged RECORD_TOO_LARGE and alerted.
    """
    result = FileResult()
    writer_options: dict[str, Any] = {}
    if compresslevel is not None:
        writer_options["compresslevel"] = compresslevel
    added = AddedFields()
    with EnrichedWriter(sink, **writer_options) as writer:
        for record, text in read_texted(source, max_record_bytes=max_record_bytes):
            if isinstance(record, OversizeRecord):
                _pass_through(
                    record,
                    writer,
                    result,
                    max_record_bytes,
                    source_name,
                    index_events,
                    alert_min_severity,
                )
                continue
            if not record or _enriched_before(record):
                text = None  # `{}` takes no added fields; earlier x-fields are replaced
            event, matched = enrich_record(record, rules, country_of)
            if text is not None:  # its own text, the x-fields added: not serialized again
                writer.write_text(text, added.text(matched, event.country))
            else:
                writer.write(record)
            result.records += 1
            if index_events:
                _index(result, record.get("eventID"), record.get("eventTime"), record)
            if not matched:
                continue
            result.flagged += 1
            for rule in matched:
                result.by_severity[rule.severity] += 1
                if rule.alerts and rule.severity >= alert_min_severity:
                    result.alerts.append(alert_for(event, rule, source_name))
                else:
                    result.quiet[quiet_key(event, rule)] += 1
    result.bytes_out = writer.bytes_in
    return result


class AddedFields:
    """The text of the x-fields a record gets, `,"xpriority":...` (as enrich_record adds them,
    in its order), for a record copied as its own text; the few distinct ones are kept."""

    LIMIT: Final = 4096

    def __init__(self) -> None:
        self._texts: dict[tuple[tuple[str, ...], str | None], bytes] = {}

    def text(self, matched: list[Rule], country: str | None) -> bytes:
        key = (tuple(rule.id for rule in matched) if matched else (), country)
        found = self._texts.get(key)
        if found is None:
            fields: dict[str, Any] = {}
            if matched:
                fields["xpriority"] = max(rule.severity for rule in matched).name
                fields["xrules"] = list(key[0])
            if country is not None:
                fields["xcountry_code"] = country
            found = b"," + orjson.dumps(fields)[1:-1] if fields else b""
            if len(self._texts) < self.LIMIT:
                self._texts[key] = found
        return found


def _index(result: FileResult, event_id: Any, event_time: Any, record: Record) -> None:
    if isinstance(event_id, str) and len(event_id) <= EVENT_ID_CHARS:
        when = event_time if isinstance(event_time, str) else None
        result.events.append((event_id, when, record.get("xpriority")))


def _pass_through(
    record: OversizeRecord,
    writer: EnrichedWriter,
    result: FileResult,
    limit: int | None,
    source_name: str | None,
    index_events: bool,
    alert_min_severity: Severity,
) -> None:
    """An oversize record: its own text, then the flag, as one line of the enriched copy."""
    writer.write_raw(record.pieces, b"," + TOO_LARGE_MARK[1:])
    result.records += 1
    result.flagged += 1
    result.by_severity[Severity.HIGH] += 1
    if alert_min_severity <= Severity.HIGH:
        result.alerts.append(
            record_too_large(record.facts, record.size, limit or 0, source_name, record.index)
        )
    facts = record.facts
    if index_events:
        _index(result, facts.get("eventID"), facts.get("eventTime"), {"xpriority": "HIGH"})

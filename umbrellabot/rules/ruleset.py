"""The enabled rules, indexed by the eventName, eventSource, userIdentity.type or errorCode
values they require. Pure.

Rules read event logs unless they opt in to CloudTrail Insights records by requiring
`eventType: AwsCloudTrailInsight`: an Insight about StopLogging calls is a statistic, not
someone stopping a trail, so the pack's eventName rules never see one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from umbrellabot.model.records import INSIGHT_EVENT_TYPE, Event, Record, is_insight_record
from umbrellabot.rules.expressions import INDEXED_FIELDS
from umbrellabot.rules.rule import Rule

_INSIGHT = INSIGHT_EVENT_TYPE.casefold()


def reads_insights(rule: Rule) -> bool:
    """Whether the rule requires an eventType one of which is AwsCloudTrailInsight."""
    return _INSIGHT in rule.match.required_values().get("eventType", frozenset())


def reads_events(rule: Rule) -> bool:
    """Whether the rule may match an event log record (any eventType but Insights')."""
    required = rule.match.required_values().get("eventType")
    return required is None or bool(required - {_INSIGHT})


def applies_to(rule: Rule, record: Record) -> bool:
    """Whether the rule is evaluated on the record at all (its kind: event or Insight)."""
    return reads_insights(rule) if is_insight_record(record) else reads_events(rule)


class RuleSet:
    """The enabled rules, dispatched by the indexed fields (expressions.INDEXED_FIELDS) so that
    rules that cannot match an event cost it one dictionary lookup."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.enabled = tuple(rule for rule in rules if rule.enabled)
        self._by_field: dict[str, dict[str, list[tuple[int, Rule]]]] = {
            name: {} for name in INDEXED_FIELDS
        }
        self._generic: list[tuple[int, Rule]] = []
        self._insight_rules = tuple(rule for rule in self.enabled if reads_insights(rule))
        for position, rule in enumerate(self.enabled):
            if not reads_events(rule):
                continue
            required = rule.match.required_values()
            indexed = next((name for name in INDEXED_FIELDS if name in required), None)
            if indexed is None:
                self._generic.append((position, rule))
                continue
            for value in required[indexed]:
                self._by_field[indexed].setdefault(value, []).append((position, rule))
        self._candidates: dict[tuple[Any, ...], tuple[Rule, ...]] = {}

    def __len__(self) -> int:
        return len(self.enabled)

    def candidates(self, record: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The enabled rules that could match `record`, in load order."""
        if record.get("eventType") == INSIGHT_EVENT_TYPE:
            return self._insight_rules  # few: no index
        identity = record.get("userIdentity")
        raw = (
            record.get("eventName"),
            record.get("eventSource"),
            identity.get("type") if identity.__class__ is dict else None,
            record.get("errorCode"),
        )
        try:
            return self._candidates[raw]  # keyed by the values as they are: no casefold
        except (KeyError, TypeError):  # new, or a value that is no key (a list, an object)
            pass
        key = tuple(value.casefold() if isinstance(value, str) else "" for value in raw)
        picked = list(self._generic)
        for name, value in zip(INDEXED_FIELDS, key, strict=True):
            picked += self._by_field[name].get(value, [])
        found = tuple(rule for _, rule in sorted(picked, key=lambda pair: pair[0]))
        if len(self._candidates) < 100_000 and all(_hashable(value) for value in raw):
            self._candidates[raw] = found  # bounded: the values come from untrusted logs
        return found

    def match(self, event: Event) -> list[Rule]:
        return [rule for rule in self.candidates(event.record) if rule.predicate(event)]


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)

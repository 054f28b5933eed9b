"""The enabled rules, indexed by the eventName/eventSource values they require. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from umbrellabot.model.records import Event
from umbrellabot.rules.expressions import INDEXED_FIELDS
from umbrellabot.rules.rule import Rule


class RuleSet:
    """The enabled rules, dispatched by eventName/eventSource so that rules that cannot match an
    event cost it one dictionary lookup."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.enabled = tuple(rule for rule in rules if rule.enabled)
        self._by_field: dict[str, dict[str, list[tuple[int, Rule]]]] = {
            name: {} for name in INDEXED_FIELDS
        }
        self._generic: list[tuple[int, Rule]] = []
        for position, rule in enumerate(self.enabled):
            required = rule.match.required_values()
            indexed = next((name for name in INDEXED_FIELDS if name in required), None)
            if indexed is None:
                self._generic.append((position, rule))
                continue
            for value in required[indexed]:
                self._by_field[indexed].setdefault(value, []).append((position, rule))
        self._candidates: dict[tuple[str, str], tuple[Rule, ...]] = {}

    def __len__(self) -> int:
        return len(self.enabled)

    def candidates(self, record: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The enabled rules that could match `record`, in load order."""
        name = record.get("eventName")
        source = record.get("eventSource")
        key = (
            name.casefold() if isinstance(name, str) else "",
            source.casefold() if isinstance(source, str) else "",
        )
        found = self._candidates.get(key)
        if found is None:
            picked = list(self._generic)
            picked += self._by_field["eventName"].get(key[0], [])
            picked += self._by_field["eventSource"].get(key[1], [])
            found = tuple(rule for _, rule in sorted(picked, key=lambda pair: pair[0]))
            if len(self._candidates) < 100_000:  # bounded: names come from untrusted logs
                self._candidates[key] = found
        return found

    def match(self, event: Event) -> list[Rule]:
        return [rule for rule in self.candidates(event.record) if rule.predicate(event)]

"""The 57 supported SigmaHQ CloudTrail rules of ../shared/data/sigma load beside the default pack,
and each one, compiled by umbrellabot, agrees with an independent reading of its own detection
block on records made from that block: one made to match, and, from it, records made not to
(each required field removed or given another value).

The oracle here evaluates pySigma's condition tree directly (strings through pySigma's own
`to_regex`, case-insensitive, whole value), so it shares nothing with rules/sigma_compile.py
but the parser."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from umbrellabot.model.records import Event
from umbrellabot.rules.rule import default_rules_path, load_rules

SIGMA = Path(__file__).resolve().parents[3] / "shared" / "data" / "sigma"
SUPPORTED = SIGMA / "rules"
# a string each regular expression of the supported rules finds a match in (checked below)
REGEX_SAMPLES = {".+:assumed-role/aws:.+": "arn:aws:sts::111122223333:assumed-role/aws:ec2/i-1"}
NO_MATCH = "umbrellabot-no-match"

pytestmark = pytest.mark.skipif(not SUPPORTED.is_dir(), reason="../shared/data/sigma is missing")


def rule_files() -> list[Path]:
    return sorted(SUPPORTED.rglob("*.yml")) if SUPPORTED.is_dir() else []


def test_all_57_supported_rules_load_beside_the_default_pack() -> None:
    rules = load_rules([default_rules_path(), SUPPORTED], {"allowed_countries": ["US"]})
    sigma = [rule for rule in rules if rule.kind == "sigma"]
    assert len(rule_files()) == 57 and len(sigma) == 57
    ids = {str(yaml.safe_load(path.read_text())["id"]) for path in rule_files()}
    assert {rule.id for rule in sigma} == ids  # their Sigma ids, the UUIDs
    assert all(rule.author for rule in sigma)


# the oracle


def values_at(record: Any, path: str) -> list[Any]:
    found = [record]
    for segment in path.split("."):
        found = [
            child
            for value in found
            for item in (value if isinstance(value, list) else [value])
            if isinstance(item, dict) and (child := item.get(segment)) is not None
        ]
    flat: list[Any] = []
    for value in found:
        flat.extend(value if isinstance(value, list) else [value])
    return [value for value in flat if value is not None]


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def leaf_holds(path: str, value: Any, record: dict[str, Any]) -> bool:
    found = values_at(record, path)
    if isinstance(value, SigmaExpansion):
        return any(leaf_holds(path, item, record) for item in value.values)
    if isinstance(value, SigmaNull):
        return not found
    if isinstance(value, SigmaExists):
        return bool(found) is value.exists
    if isinstance(value, SigmaString):
        flags = 0 if isinstance(value, SigmaCasedString) else re.IGNORECASE
        pattern = re.compile(value.to_regex().regexp.to_plain(), flags | re.DOTALL)
        return any(pattern.fullmatch(text_of(v)) for v in found)
    if isinstance(value, SigmaNumber):
        return any(text_of(v) == str(value.number) for v in found)
    if isinstance(value, SigmaBool):
        return any(text_of(v) == text_of(value.boolean) for v in found)
    if isinstance(value, SigmaRegularExpression):
        flags = re.IGNORECASE if SigmaRegularExpressionFlag.IGNORECASE in value.flags else 0
        return any(re.search(value.regexp.to_plain(), text_of(v), flags) for v in found)
    if isinstance(value, SigmaCIDRExpression):
        return any(_in_network(text_of(v), value.network) for v in found)
    if isinstance(value, SigmaFieldReference):
        others = {text_of(v).casefold() for v in values_at(record, value.field)}
        return any(text_of(v).casefold() in others for v in found)
    raise AssertionError(f"the oracle has no reading of {value!r}")


def _in_network(text: str, network: Any) -> bool:
    try:
        return ipaddress.ip_address(text) in network
    except ValueError:
        return False


def holds(tree: Any, record: dict[str, Any]) -> bool:
    if isinstance(tree, ConditionAND):
        return all(holds(arg, record) for arg in tree.args)
    if isinstance(tree, ConditionOR):
        return any(holds(arg, record) for arg in tree.args)
    if isinstance(tree, ConditionNOT):
        return not holds(tree.args[0], record)
    assert isinstance(tree, ConditionFieldEqualsValueExpression)
    return leaf_holds(tree.field, tree.value, record)


# records made from the detection block


Literal = tuple[str, Any, bool]  # field, value, wanted to hold


def conjunctions(tree: Any, positive: bool = True) -> Iterator[list[Literal]]:
    """The condition as an OR of ANDs of literals (negations pushed to the leaves)."""
    if isinstance(tree, ConditionNOT):
        yield from conjunctions(tree.args[0], not positive)
        return
    if isinstance(tree, ConditionAND | ConditionOR):
        is_and = isinstance(tree, ConditionAND) == positive
        parts = [list(conjunctions(arg, positive)) for arg in tree.args]
        if not is_and:
            for part in parts:
                yield from part
            return
        combined: list[list[Literal]] = [[]]
        for part in parts:
            combined = [left + right for left in combined for right in part][:64]
        yield from combined
        return
    yield [(tree.field, tree.value, positive)]


def instance(value: Any) -> Any:
    """A value that the literal holds for."""
    if isinstance(value, SigmaExpansion):
        return instance(value.values[0])
    if isinstance(value, SigmaString):
        return "".join(
            "x"
            if part is SpecialChars.WILDCARD_SINGLE
            else "zz"  # text around: a contains test is no equality
            if part is SpecialChars.WILDCARD_MULTI
            else str(part)
            for part in value.s
        )
    if isinstance(value, SigmaNumber):
        return value.number
    if isinstance(value, SigmaBool):
        return value.boolean
    if isinstance(value, SigmaRegularExpression):
        return REGEX_SAMPLES[value.regexp.to_plain()]
    if isinstance(value, SigmaCIDRExpression):
        return str(next(iter(value.network.hosts()), value.network.network_address))
    if isinstance(value, SigmaExists):
        return "present"
    raise AssertionError(f"no instance of {value!r}")


def place(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = record
    for segment in parents:
        target = target.setdefault(segment, {})
    if isinstance(target.get(last), str) and isinstance(value, str):
        value = target[last] + value  # contains|all: every part in one text
    target[last] = value


def build(literals: list[Literal]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for path, value, positive in sorted(literals, key=_order):
        if not positive or isinstance(value, SigmaNull | SigmaFieldReference):
            continue
        if isinstance(value, SigmaExists) and not value.exists:
            continue
        place(record, path, instance(value))
    for path, value, positive in literals:  # this field equals that one
        if positive and isinstance(value, SigmaFieldReference):
            others = values_at(record, value.field)
            if not others:
                place(record, value.field, "same")
                others = ["same"]
            place(record, path, text_of(others[0]))
    return record


def _order(literal: Literal) -> int:
    """Prefixes first and suffixes last, so that parts joined in one text keep their place."""
    value = literal[1]
    if isinstance(value, SigmaString) and value.s:
        if value.s[0] is not SpecialChars.WILDCARD_MULTI:
            return 0
        if value.s[-1] is not SpecialChars.WILDCARD_MULTI:
            return 2
    return 1


def without(record: dict[str, Any], path: str, replacement: Any = None) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    *parents, last = path.split(".")
    target: Any = changed
    for segment in parents:
        target = target.get(segment) if isinstance(target, dict) else None
    if isinstance(target, dict) and last in target:
        if replacement is None:
            del target[last]
        else:
            target[last] = replacement
    return changed


def swapped_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: swapped_case(item) for key, item in value.items()}
    if isinstance(value, list):
        return [swapped_case(item) for item in value]
    return value.swapcase() if isinstance(value, str) else value


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.stem)
def test_each_rule_agrees_with_its_own_detection_block(path: Path) -> None:
    [rule] = load_rules([path], {})
    sigma = SigmaRule.from_yaml(path.read_text())
    trees = [condition.parse() for condition in sigma.detection.parsed_condition]
    tree = trees[0] if len(trees) == 1 else ConditionOR(trees)
    matching = next((record for c in conjunctions(tree) if holds(tree, record := build(c))), None)
    assert matching is not None, f"{path.name}: no record made from the block matches it"
    assert rule.matches(Event(matching)), f"{path.name}: should match {matching}"
    variants = [swapped_case(matching)]  # Sigma's strings ignore case
    for literals in conjunctions(tree):
        for field, _, positive in literals:
            if positive:
                variants += [without(matching, field), without(matching, field, NO_MATCH)]
    non_matching = 0
    for record in variants:
        expected = holds(tree, record)
        non_matching += not expected
        assert rule.matches(Event(record)) is expected, f"{path.name}: {record}"
    assert non_matching, f"{path.name}: no record made not to match"

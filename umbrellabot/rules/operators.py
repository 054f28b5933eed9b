"""The operator table of the rule language: one entry per YAML operator, with its aliases.

Each operator turns its operand (checked here, at load time) into a test on the list of values a
field path reached. The same table feeds validation, the docs' list of names and behaviour, so
they cannot drift. A value of the wrong type never raises: it simply does not match.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from umbrellabot.rules.regex_literals import required_literals

ValuesTest = Callable[[list[Any]], bool]
ValueTest = Callable[[Any], bool]


class OperandError(ValueError):
    """The operand of an operator is unusable; the message says what was expected."""


def as_text(value: Any) -> str | None:
    """The text CloudTrail would write for a scalar: True -> 'true', 22 -> '22'; an object's
    text is its compact JSON (so `requestParameters: {contains: …}` searches all of it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _scalars(operand: Any, *, allow_single: bool) -> list[str]:
    items = operand if isinstance(operand, list) else [operand] if allow_single else None
    if items is None or not items:
        raise OperandError("expected a non-empty list of values")
    texts = []
    for item in items:
        if not _is_scalar(item):
            raise OperandError(f"expected text, numbers or booleans, got {type(item).__name__}")
        text = as_text(item)
        assert text is not None
        texts.append(text)
    return texts


def _strings(operand: Any) -> list[str]:
    items = operand if isinstance(operand, list) else [operand]
    if not items or not all(isinstance(item, str) for item in items):
        raise OperandError("expected text or a list of text")
    return list(items)


def _fold(case_sensitive: bool) -> Callable[[str], str]:
    return (lambda text: text) if case_sensitive else str.casefold


def _any(test: ValueTest) -> ValuesTest:
    def holds(values: list[Any]) -> bool:
        for value in values:  # noqa: SIM110 - a plain loop: any() with a generator is slower here
            if test(value):
                return True
        return False

    return holds


def _none(test: ValueTest) -> ValuesTest:
    some = _any(test)
    return lambda values: not some(values)


def _text_test(case_sensitive: bool, check: Callable[[str], bool]) -> ValueTest:
    fold = _fold(case_sensitive)

    def test(value: Any) -> bool:
        if value.__class__ is str:  # the common case, without a call
            return check(fold(value))
        text = as_text(value)
        return text is not None and check(fold(text))

    return test


def _one_of(operand: list[str], case_sensitive: bool) -> ValueTest:
    fold = _fold(case_sensitive)
    wanted = frozenset(fold(item) for item in operand)
    if case_sensitive:
        return _text_test(case_sensitive, wanted.__contains__)
    # casefold maps each character to one or more, never fewer: a value longer than every
    # wanted text cannot fold into one, and is not folded (a userAgent against 'TruffleHog')
    longest = max(map(len, wanted))

    def test(value: Any) -> bool:
        text = value if value.__class__ is str else as_text(value)
        return text is not None and len(text) <= longest and text.casefold() in wanted

    return test


def build_equals(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_one_of(_scalar_operand(operand), case_sensitive))


def build_not_equals(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _none(_one_of(_scalar_operand(operand), case_sensitive))


def _scalar_operand(operand: Any) -> list[str]:
    if isinstance(operand, list):
        raise OperandError("expected a single value (use `in` for a list)")
    return _scalars(operand, allow_single=True)


def build_in(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_one_of(_scalars(operand, allow_single=False), case_sensitive))


def build_not_in(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _none(_one_of(_scalars(operand, allow_single=False), case_sensitive))


def _pattern_test(patterns: Sequence[str], case_sensitive: bool) -> ValueTest:
    flags = 0 if case_sensitive else re.IGNORECASE
    compiled = re.compile("|".join(f"(?:{p})" for p in patterns), flags)
    literals = required_literals(list(patterns), flags)
    if literals is None:
        return _text_test(True, lambda text: compiled.search(text) is not None)
    # every match contains one of the literals: a text with none is no match, unsearched
    return _text_test(
        True,
        lambda text: any(lit in text for lit in literals) and compiled.search(text) is not None,
    )


def build_glob(operand: Any, case_sensitive: bool) -> ValuesTest:
    patterns = [fnmatch.translate(item) for item in _strings(operand)]
    return _any(_pattern_test([rf"\A{p}" for p in patterns], case_sensitive))


def build_regex(operand: Any, case_sensitive: bool) -> ValuesTest:
    patterns = _strings(operand)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise OperandError(f"bad regular expression {pattern!r}: {err}") from None
    return _any(_pattern_test(patterns, case_sensitive))


def build_prefix(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = _fold(case_sensitive)
    prefixes = tuple(fold(item) for item in _strings(operand))
    return _any(_text_test(case_sensitive, lambda text: text.startswith(prefixes)))


def build_suffix(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = _fold(case_sensitive)
    suffixes = tuple(fold(item) for item in _strings(operand))
    return _any(_text_test(case_sensitive, lambda text: text.endswith(suffixes)))


def build_contains(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = _fold(case_sensitive)
    needles = tuple(fold(item) for item in _strings(operand))
    return _any(_text_test(case_sensitive, lambda text: any(n in text for n in needles)))


def wildcard_regex(pattern: str) -> str:
    """Sigma's wildcards as a regular expression for the whole value: `*` any run, `?` one
    character, `\\` escapes `*`, `?` and itself (before anything else it is a backslash)."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        following = pattern[index + 1] if index + 1 < len(pattern) else ""
        if char == "\\" and following in ("*", "?", "\\"):
            out.append(re.escape(following))
            index += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        index += 1
    return r"\A(?s:" + "".join(out) + r")\Z"


def build_wildcard(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_pattern_test([wildcard_regex(item) for item in _strings(operand)], case_sensitive))


def build_present(operand: Any, case_sensitive: bool) -> ValuesTest:
    """Sigma's `exists` and `null`: the field is there with a value (even ""), or is not."""
    if not isinstance(operand, bool):
        raise OperandError("expected true or false")
    if operand:
        return lambda values: bool(values)
    return lambda values: not values


def build_exists(operand: Any, case_sensitive: bool) -> ValuesTest:
    if not isinstance(operand, bool):
        raise OperandError("expected true or false")
    present = _any(lambda value: value != "")  # CloudTrail writes "" for "no value"
    if operand:
        return present
    return lambda values: not present(values)


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Any, bool], ValuesTest]:
    def build(operand: Any, case_sensitive: bool) -> ValuesTest:
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise OperandError("expected a number")
        limit = float(operand)

        def test(value: Any) -> bool:
            number = as_number(value)
            return number is not None and compare(number, limit)

        return _any(test)

    return build


def build_cidr(operand: Any, case_sensitive: bool) -> ValuesTest:
    networks = []
    for item in _strings(operand):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise OperandError(f"bad CIDR {item!r}") from None

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return _any(test)


def build_where(operand: Any, case_sensitive: bool) -> ValuesTest:
    """`operand` is the compiled nested expression (a predicate on one element, which itself
    turns JSON text into objects and ignores what is no object)."""
    holds: Callable[[Any], bool] = operand
    return _any(holds)


@dataclass(frozen=True)
class Operator:
    name: str
    build: Callable[[Any, bool], ValuesTest]
    operand: str  # what the operand is, in words, for errors and docs
    aliases: tuple[str, ...] = ()
    text: bool = False  # honours case_sensitive
    negated: bool = False  # holds when no value matches (so also when the field is missing)
    nested: bool = False  # the operand is an expression applied to each element
    references: bool = False  # the operand may be {field: path}: a value of the same event


OPERATORS: tuple[Operator, ...] = (
    Operator("equals", build_equals, "a value", ("eq",), text=True, references=True),
    Operator(
        "not_equals",
        build_not_equals,
        "a value",
        ("ne",),
        text=True,
        references=True,
        negated=True,
    ),
    Operator("in", build_in, "a list of values", ("one_of",), text=True, references=True),
    Operator(
        "not_in", build_not_in, "a list of values", (), text=True, references=True, negated=True
    ),
    Operator("glob", build_glob, "a pattern or list", (), text=True),
    Operator("prefix", build_prefix, "text or a list", ("startswith",), text=True, references=True),
    Operator("suffix", build_suffix, "text or a list", ("endswith",), text=True, references=True),
    Operator("contains", build_contains, "text or a list", (), text=True, references=True),
    Operator("regex", build_regex, "a regular expression or list", ("re",), text=True),
    Operator("wildcard", build_wildcard, "a pattern with * and ?, \\ escapes", (), text=True),
    Operator("exists", build_exists, "true or false"),
    Operator("present", build_present, "true or false"),
    Operator("gt", _numeric(lambda a, b: a > b), "a number"),
    Operator("gte", _numeric(lambda a, b: a >= b), "a number"),
    Operator("lt", _numeric(lambda a, b: a < b), "a number"),
    Operator("lte", _numeric(lambda a, b: a <= b), "a number"),
    Operator("cidr", build_cidr, "a CIDR or list", ("in_cidr",)),
    Operator("where", build_where, "an expression on each element", ("any_item",), nested=True),
)

BY_NAME: dict[str, Operator] = {name: op for op in OPERATORS for name in (op.name, *op.aliases)}
CASE_SENSITIVE_KEY = "case_sensitive"


def known_names() -> str:
    return ", ".join(op.name for op in OPERATORS)

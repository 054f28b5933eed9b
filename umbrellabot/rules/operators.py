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

from umbrellabot.rules.inline import (
    inline_contains,
    inline_equals,
    inline_exists,
    inline_in,
    inline_negated,
    inline_prefix,
    inline_present,
    inline_suffix,
)
from umbrellabot.rules.operands import (
    Const,
    Inline,
    OperandError,
    as_number,
    as_text,
    fold_for,
    scalar_operand,
    scalars,
    strings,
)
from umbrellabot.rules.regex_literals import required_literals

__all__ = ["BY_NAME", "OPERATORS", "OperandError", "Operator", "ValuesTest", "as_text"]

ValuesTest = Callable[[list[Any]], bool]
ValueTest = Callable[[Any], bool]
Literals = tuple[str, ...] | None


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
    fold = fold_for(case_sensitive)

    def test(value: Any) -> bool:
        if value.__class__ is str:  # the common case, without a call
            return check(fold(value))
        text = as_text(value)
        return text is not None and check(fold(text))

    return test


def _one_of(operand: list[str], case_sensitive: bool) -> ValueTest:
    fold = fold_for(case_sensitive)
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
    return _any(_one_of(scalar_operand(operand), case_sensitive))


def build_not_equals(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _none(_one_of(scalar_operand(operand), case_sensitive))


def build_in(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_one_of(scalars(operand, allow_single=False), case_sensitive))


def build_not_in(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _none(_one_of(scalars(operand, allow_single=False), case_sensitive))


Search = Callable[[str], object]


def _pattern_parts(patterns: Sequence[str], case_sensitive: bool) -> tuple[Search, Literals]:
    """The search of the alternation of `patterns`, and the literals one of which its every
    match contains (None when some pattern has none)."""
    flags = 0 if case_sensitive else re.IGNORECASE
    alternation = patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)
    try:
        compiled = re.compile(alternation, flags)
    except re.error as err:  # each compiles alone: a global flag, `(?i)`, inside the list
        raise OperandError(f"patterns cannot be combined: {err} (write (?i:...) instead)") from None
    return compiled.search, required_literals(list(patterns), flags)


def _pattern_test(patterns: Sequence[str], case_sensitive: bool) -> ValueTest:
    search, literals = _pattern_parts(patterns, case_sensitive)
    if literals is None:
        return _text_test(True, lambda text: search(text) is not None)
    # every match contains one of the literals: a text with none is no match, unsearched
    return _text_test(
        True,
        lambda text: any(lit in text for lit in literals) and search(text) is not None,
    )


def _inline_pattern(patterns_of: Callable[[Any], list[str]]) -> Inline:
    """The inline form of a pattern operator: the literal test, then the search."""

    def inline(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
        search, literals = _pattern_parts(patterns_of(operand), case_sensitive)
        found = f"{const(search)}({value}) is not None"
        if literals is None:
            return found
        if len(literals) == 1:
            return f"({const(literals[0])} in {value} and {found})"
        return f"(any(literal in {value} for literal in {const(literals)}) and {found})"

    return inline


def _glob_patterns(operand: Any) -> list[str]:
    return [rf"\A{fnmatch.translate(item)}" for item in strings(operand)]


def _regex_patterns(operand: Any) -> list[str]:
    patterns = strings(operand)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise OperandError(f"bad regular expression {pattern!r}: {err}") from None
    return patterns


def _wildcard_patterns(operand: Any) -> list[str]:
    return [wildcard_regex(item) for item in strings(operand)]


def build_glob(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_pattern_test(_glob_patterns(operand), case_sensitive))


def build_regex(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_pattern_test(_regex_patterns(operand), case_sensitive))


def build_wildcard(operand: Any, case_sensitive: bool) -> ValuesTest:
    return _any(_pattern_test(_wildcard_patterns(operand), case_sensitive))


def build_prefix(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = fold_for(case_sensitive)
    prefixes = tuple(fold(item) for item in strings(operand))
    return _any(_text_test(case_sensitive, lambda text: text.startswith(prefixes)))


def build_suffix(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = fold_for(case_sensitive)
    suffixes = tuple(fold(item) for item in strings(operand))
    return _any(_text_test(case_sensitive, lambda text: text.endswith(suffixes)))


def build_contains(operand: Any, case_sensitive: bool) -> ValuesTest:
    fold = fold_for(case_sensitive)
    needles = tuple(fold(item) for item in strings(operand))
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
    for item in strings(operand):
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
    inline: Inline | None = None  # the test on one text value as Python source (codegen.py)


OPERATORS: tuple[Operator, ...] = (
    Operator(
        "equals",
        build_equals,
        "a value",
        ("eq",),
        text=True,
        references=True,
        inline=inline_equals,
    ),
    Operator(
        "not_equals",
        build_not_equals,
        "a value",
        ("ne",),
        text=True,
        references=True,
        negated=True,
        inline=inline_negated(inline_equals),
    ),
    Operator(
        "in",
        build_in,
        "a list of values",
        ("one_of",),
        text=True,
        references=True,
        inline=inline_in,
    ),
    Operator(
        "not_in",
        build_not_in,
        "a list of values",
        (),
        text=True,
        references=True,
        negated=True,
        inline=inline_negated(inline_in),
    ),
    Operator(
        "glob",
        build_glob,
        "a pattern or list",
        (),
        text=True,
        inline=_inline_pattern(_glob_patterns),
    ),
    Operator(
        "prefix",
        build_prefix,
        "text or a list",
        ("startswith",),
        text=True,
        references=True,
        inline=inline_prefix,
    ),
    Operator(
        "suffix",
        build_suffix,
        "text or a list",
        ("endswith",),
        text=True,
        references=True,
        inline=inline_suffix,
    ),
    Operator(
        "contains",
        build_contains,
        "text or a list",
        (),
        text=True,
        references=True,
        inline=inline_contains,
    ),
    Operator(
        "regex",
        build_regex,
        "a regular expression or list",
        ("re",),
        text=True,
        inline=_inline_pattern(_regex_patterns),
    ),
    Operator(
        "wildcard",
        build_wildcard,
        "a pattern with * and ?, \\ escapes",
        (),
        text=True,
        inline=_inline_pattern(_wildcard_patterns),
    ),
    Operator("exists", build_exists, "true or false", inline=inline_exists),
    Operator("present", build_present, "true or false", inline=inline_present),
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

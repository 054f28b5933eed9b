"""The inline forms of the operators (the `inline` column of operators.OPERATORS): each test on
one text value, named `value` in the generated code, as a Python expression equal to the built
test on [value] (codegen.py compiles rules with them). Operands never become source text:
`const` names them. Pure."""

from __future__ import annotations

from typing import Any

from umbrellabot.rules.operands import (
    Const,
    Inline,
    OperandError,
    fold_for,
    scalar_operand,
    scalars,
    strings,
)


def _inline_one_of(items: list[str], case_sensitive: bool, value: str, const: Const) -> str:
    fold = fold_for(case_sensitive)
    wanted = frozenset(fold(item) for item in items)
    if case_sensitive:
        return f"{value} in {const(wanted)}"
    longest = max(map(len, wanted))  # as in _one_of: a longer value is not folded
    return f"(len({value}) <= {longest} and {value}.casefold() in {const(wanted)})"


def inline_negated(inline: Inline) -> Inline:
    return lambda operand, cs, value, const: f"not {inline(operand, cs, value, const)}"


def inline_equals(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    return _inline_one_of(scalar_operand(operand), case_sensitive, value, const)


def inline_in(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    return _inline_one_of(scalars(operand, allow_single=False), case_sensitive, value, const)


def _folded(value: str, case_sensitive: bool) -> str:
    return value if case_sensitive else f"{value}.casefold()"


def inline_prefix(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    prefixes = tuple(fold_for(case_sensitive)(item) for item in strings(operand))
    return f"{_folded(value, case_sensitive)}.startswith({const(prefixes)})"


def inline_suffix(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    suffixes = tuple(fold_for(case_sensitive)(item) for item in strings(operand))
    return f"{_folded(value, case_sensitive)}.endswith({const(suffixes)})"


def inline_contains(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    needles = [fold_for(case_sensitive)(item) for item in strings(operand)]
    text = _folded(value, case_sensitive)
    if len(needles) == 1:
        return f"{const(needles[0])} in {text}"
    return f"any(needle in {text} for needle in {const(tuple(needles))})"


def inline_exists(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    if not isinstance(operand, bool):
        raise OperandError("expected true or false")
    return f"{value} != ''" if operand else f"{value} == ''"


def inline_present(operand: Any, case_sensitive: bool, value: str, const: Const) -> str:
    if not isinstance(operand, bool):
        raise OperandError("expected true or false")
    return "True" if operand else "False"

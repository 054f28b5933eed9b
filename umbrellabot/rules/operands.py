"""Operands of the rule language's operators: checked and normalized at load time (operators.py
builds the tests, inline.py their source forms). Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

# A test's inline form (inline.py): given the operand, case sensitivity, the name of one text
# value and `Const` (which names a value for the generated code), a Python expression.
Const = Callable[[Any], str]
Inline = Callable[[Any, bool, str, Const], str]


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


def scalars(operand: Any, *, allow_single: bool) -> list[str]:
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


def strings(operand: Any) -> list[str]:
    items = operand if isinstance(operand, list) else [operand]
    if not items or not all(isinstance(item, str) for item in items):
        raise OperandError("expected text or a list of text")
    return list(items)


def fold_for(case_sensitive: bool) -> Callable[[str], str]:
    return (lambda text: text) if case_sensitive else str.casefold


def scalar_operand(operand: Any) -> list[str]:
    if isinstance(operand, list):
        raise OperandError("expected a single value (use `in` for a list)")
    return scalars(operand, allow_single=True)

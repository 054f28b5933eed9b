"""A Sigma rule's condition, as pySigma parsed it, compiled into umbrellabot's own expression tree
(expressions.py) and operator table (operators.py): no query backend, no text translation.

Sigma's semantics, kept exactly:
- strings ignore case (`cased` makes them case-sensitive); `*` and `?` are wildcards and `\\`
  escapes them; a plain string is `equals`, `x*` `prefix`, `*x` `suffix`, `*x*` `contains`,
  anything else `wildcard` (operators.py), all over the whole value;
- `re` is a case-sensitive search unless its `i` flag; `m` and `s` become inline flags;
- `null` and `exists: false` hold when the field is missing (or null); `exists: true` when it is
  there, even as "" (the `present` operator);
- a test on a missing field is false and `not` of it is true (Python's `not`, not SQL's NULL);
- a string test on an object tests its compact JSON text (operators.as_text);
- `fieldref` compares with the value of another field of the same event; `lt`..`gte` compare
  numbers; values expanded by `windash`, `base64offset` and the like are OR-linked.
A leaf umbrellabot cannot evaluate (a placeholder, a keyword search without a field, a query
expression) raises SigmaUnsupported naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from umbrellabot.rules.expressions import (
    AllNode,
    AnyNode,
    FieldNode,
    FieldTest,
    Node,
    NotNode,
)
from umbrellabot.rules.operators import BY_NAME
from umbrellabot.rules.sigma import SigmaUnsupported

_COMPARE = {
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
}
_INLINE_FLAGS = {SigmaRegularExpressionFlag.MULTILINE: "m", SigmaRegularExpressionFlag.DOTALL: "s"}


def compile_condition(tree: Any, where: str = "detection") -> Node:
    """The postprocessed condition tree of one `condition` entry as an expression tree."""
    if isinstance(tree, ConditionAND):
        return AllNode(tuple(compile_condition(arg, where) for arg in tree.args))
    if isinstance(tree, ConditionOR):
        return _any_of([compile_condition(arg, where) for arg in tree.args])
    if isinstance(tree, ConditionNOT):
        return NotNode(compile_condition(tree.args[0], where))
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        return _leaf(tree.field, tree.value, where)
    if isinstance(tree, ConditionValueExpression):
        raise SigmaUnsupported(
            where, f"a keyword search (the value {_shown(tree.value)} without a field)"
        )
    raise SigmaUnsupported(where, f"a condition of kind {type(tree).__name__}")


def _any_of(children: Sequence[Node]) -> Node:
    """OR, with the plain `equals` tests of one field merged into one `in` (one getter, one set
    lookup: Sigma writes a list of eventNames as one OR per name)."""
    merged: dict[tuple[str, bool], list[Any]] = {}
    rest: list[Node] = []
    for child in children:
        test = _plain_equals(child)
        if test is None:
            rest.append(child)
        else:
            merged.setdefault((test.path, test.case_sensitive), []).append(test.operand)
    nodes: list[Node] = [
        _test(path, "equals", operands[0], cased)
        if len(operands) == 1
        else _test(path, "in", operands, cased)
        for (path, cased), operands in merged.items()
    ]
    nodes += rest
    return nodes[0] if len(nodes) == 1 else AnyNode(tuple(nodes))


def _plain_equals(node: Node) -> FieldTest | None:
    if isinstance(node, FieldNode) and len(node.tests) == 1:
        test = node.tests[0]
        if test.operator == "equals" and test.reference is None:
            return test
    return None


def _test(path: str, operator: str, operand: Any, case_sensitive: bool = False) -> FieldNode:
    built = BY_NAME[operator].build(operand, case_sensitive)
    return FieldNode((FieldTest(path, operator, operand, case_sensitive, built),))


def _leaf(path: str, value: Any, where: str) -> Node:
    where = f"{where}.{path}"
    if isinstance(value, SigmaExpansion):
        return _any_of([_leaf(path, item, where) for item in value.values])
    if isinstance(value, SigmaString):
        return _string(path, value, where)
    if isinstance(value, SigmaTimestampPart):
        raise SigmaUnsupported(where, "a timestamp part modifier (minute, hour, day …)")
    if isinstance(value, SigmaNumber):
        return _test(path, "equals", value.number)
    if isinstance(value, SigmaBool):
        return _test(path, "equals", value.boolean)
    if isinstance(value, SigmaNull):
        return _test(path, "present", False)
    if isinstance(value, SigmaExists):
        return _test(path, "present", value.exists)
    if isinstance(value, SigmaRegularExpression):
        return _regex(path, value)
    if isinstance(value, SigmaCIDRExpression):
        return _test(path, "cidr", [value.cidr])
    if isinstance(value, SigmaCompareExpression):
        return _compare(path, value)
    if isinstance(value, SigmaFieldReference):
        return _reference(path, value)
    raise SigmaUnsupported(where, f"a value of kind {type(value).__name__}")


def _string(path: str, value: SigmaString, where: str) -> Node:
    parts = list(value.s)
    placeholders = [part.name for part in parts if isinstance(part, Placeholder)]
    if placeholders:
        raise SigmaUnsupported(
            where,
            f"the placeholder %{placeholders[0]}% (expand needs values umbrellabot does not"
            " have: replace it in a copy of the rule)",
        )
    cased = isinstance(value, SigmaCasedString)
    texts = [part for part in parts if isinstance(part, str)]
    stars = [part for part in parts if part is SpecialChars.WILDCARD_MULTI]
    if not stars and len(parts) == len(texts):
        return _test(path, "equals", "".join(texts), cased)
    if len(texts) == 1 and len(parts) == len(texts) + len(stars):
        body = texts[0]
        star = SpecialChars.WILDCARD_MULTI
        first, last = parts[0] is star, parts[-1] is star
        if first and last and len(parts) == 3:
            return _test(path, "contains", body, cased)
        if last and len(parts) == 2:
            return _test(path, "prefix", body, cased)
        if first and len(parts) == 2:
            return _test(path, "suffix", body, cased)
    return _test(path, "wildcard", _wildcard_text(parts), cased)


def _wildcard_text(parts: Sequence[Any]) -> str:
    """The parts as a `wildcard` operand: literal `*`, `?` and `\\` escaped."""
    out = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append("*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append("?")
        else:
            out.append("".join("\\" + c if c in "*?\\" else c for c in str(part)))
    return "".join(out)


def _regex(path: str, value: SigmaRegularExpression) -> Node:
    pattern = value.regexp.to_plain()
    inline = "".join(sorted(_INLINE_FLAGS[f] for f in value.flags if f in _INLINE_FLAGS))
    if inline:
        pattern = f"(?{inline}:{pattern})"  # scoped: the operator joins patterns
    ignore_case = SigmaRegularExpressionFlag.IGNORECASE in value.flags
    return _test(path, "regex", pattern, case_sensitive=not ignore_case)


def _compare(path: str, value: SigmaCompareExpression) -> Node:
    number = value.number.number
    if value.op is CompareOperators.NEQ:  # a missing field is no number: the test is false
        return AllNode((_test(path, "present", True), _test(path, "not_equals", number)))
    return _test(path, _COMPARE[value.op], number)


def _reference(path: str, value: SigmaFieldReference) -> Node:
    # `fieldref|startswith`: this field's value starts with the other field's
    operator = "equals"
    if value.starts_with and value.ends_with:
        operator = "contains"
    elif value.starts_with:
        operator = "prefix"
    elif value.ends_with:
        operator = "suffix"
    operand = {"field": value.field}
    test = FieldTest(path, operator, operand, False, bool, value.field)
    return FieldNode((test,))


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")

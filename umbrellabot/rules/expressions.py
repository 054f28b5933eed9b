"""Rule expressions: parsed from YAML into a small tree, checked, and compiled to predicates.

`parse_expression` validates at load time and raises `ExpressionError` whose `where` is the key
path inside the rule (`match.all[1].eventName.equal`), so the loader can name file, rule and key.
Compiled predicates are plain closures over an `Event`; `explain` walks the tree instead, to say
which conditions held (for the Slack bot and `show`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from umbrellabot.model.records import Event, compile_getter
from umbrellabot.rules.operators import (
    BY_NAME,
    CASE_SENSITIVE_KEY,
    OperandError,
    Operator,
    ValuesTest,
    as_text,
    known_names,
)

Predicate = Callable[[Event], bool]
_VARIABLE = re.compile(r"^\$[a-z_][a-z0-9_]*$")  # $allowed_countries; $LATEST stays literal
COMBINATORS = ("all", "any", "not")
# Fields the rule index dispatches on, most selective first: a rule that requires one of their
# values is only evaluated for events carrying it (a rule on errorCode or on the root user is
# then not looked at for the many events without).
INDEXED_FIELDS = ("eventName", "eventSource", "userIdentity.type", "errorCode")
# ...and the one that says which kind of record a rule reads (event logs or Insights events)
REQUIRED_FIELDS = (*INDEXED_FIELDS, "eventType")


class ExpressionError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Explanation:
    text: str
    held: bool
    children: tuple[Explanation, ...] = ()

    def lines(self, depth: int = 0) -> list[str]:
        mark = "✓" if self.held else "✗"
        out = [f"{'  ' * depth}{mark} {self.text}"]
        for child in self.children:
            out.extend(child.lines(depth + 1))
        return out


EventCheck = Callable[[Event, list[Any]], bool]


@dataclass(frozen=True)
class FieldTest:
    """One operator on one field, e.g. eventName glob Describe*."""

    path: str
    operator: str
    operand: Any
    case_sensitive: bool
    test: ValuesTest = field(compare=False, repr=False)
    reference: str | None = None  # operand is the value of this field of the same event

    def check(self) -> EventCheck:
        """The test as a function of the event and the values its path reached."""
        if self.reference is None:
            static = self.test
            return lambda event, values: static(values)
        return _reference_check(self)

    def describe(self) -> str:
        case = " (case-sensitive)" if self.case_sensitive else ""
        operand = orjson.dumps(self.operand, default=str).decode()
        return f"{self.path} {self.operator} {operand}{case}"


# Against the value(s) of another field, equals means "one of them" and not_equals "none of them".
_REFERENCE_AS = {"equals": "in", "not_equals": "not_in"}


def _reference_check(test: FieldTest) -> EventCheck:
    operator = BY_NAME[_REFERENCE_AS.get(test.operator, test.operator)]
    getter = compile_getter(test.reference or "")
    case_sensitive = test.case_sensitive

    def check(event: Event, values: list[Any]) -> bool:
        texts = [text for text in map(as_text, getter(event)) if text]
        if not texts:  # nothing to compare with: only a negated test holds
            return operator.negated
        return operator.build(texts, case_sensitive)(values)

    return check


def _element_predicate(nested: Predicate) -> Callable[[Any], bool]:
    """`where`: the nested expression sees one element (JSON text is parsed) as its record."""

    def holds(element: Any) -> bool:
        if isinstance(element, str) and element.lstrip()[:1] in ("{", "["):
            try:
                element = orjson.loads(element)
            except orjson.JSONDecodeError:
                return False
        if isinstance(element, list):
            return any(holds(item) for item in element)
        return isinstance(element, dict) and nested(Event(element))

    return holds


class Node(ABC):
    @abstractmethod
    def compile(self) -> Predicate: ...

    @abstractmethod
    def explain(self, event: Event) -> Explanation: ...

    def required_values(self) -> dict[str, frozenset[str]]:
        """Indexed field (REQUIRED_FIELDS) -> values one of which every matching event must
        carry, case-folded."""
        return {}


@dataclass(frozen=True)
class FieldNode(Node):
    tests: tuple[FieldTest, ...]

    def compile(self) -> Predicate:
        getter = compile_getter(self.tests[0].path)
        if len(self.tests) == 1 and self.tests[0].reference is None:
            only = self.tests[0].test  # the common case: one static test, no extra call
            return lambda event: only(getter(event))
        checks = tuple(test.check() for test in self.tests)

        def holds(event: Event) -> bool:
            values = getter(event)
            return all(check(event, values) for check in checks)

        return holds

    def explain(self, event: Event) -> Explanation:
        values = compile_getter(self.tests[0].path)(event)
        parts = tuple(
            Explanation(test.describe(), test.check()(event, values)) for test in self.tests
        )
        if len(parts) == 1:
            return parts[0]
        return Explanation(f"all of ({self.tests[0].path})", all(p.held for p in parts), parts)

    def required_values(self) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for test in self.tests:
            if test.reference is not None:  # compared with another field: no fixed value
                continue
            if test.path in REQUIRED_FIELDS and test.operator in ("equals", "in"):
                items = test.operand if isinstance(test.operand, list) else [test.operand]
                values = frozenset(str(as_text(item)).casefold() for item in items)
                out[test.path] = out[test.path] & values if test.path in out else values
        return out


@dataclass(frozen=True)
class AllNode(Node):
    children: tuple[Node, ...]

    def compile(self) -> Predicate:
        predicates = tuple(child.compile() for child in self.children)
        if len(predicates) == 1:
            return predicates[0]
        return lambda event: all(predicate(event) for predicate in predicates)

    def explain(self, event: Event) -> Explanation:
        parts = tuple(child.explain(event) for child in self.children)
        if len(parts) == 1:
            return parts[0]
        return Explanation("all of", all(p.held for p in parts), parts)

    def required_values(self) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for child in self.children:
            for name, values in child.required_values().items():
                out[name] = out[name] & values if name in out else values
        return out


@dataclass(frozen=True)
class AnyNode(Node):
    children: tuple[Node, ...]

    def compile(self) -> Predicate:
        predicates = tuple(child.compile() for child in self.children)
        return lambda event: any(predicate(event) for predicate in predicates)

    def explain(self, event: Event) -> Explanation:
        parts = tuple(child.explain(event) for child in self.children)
        return Explanation("any of", any(p.held for p in parts), parts)

    def required_values(self) -> dict[str, frozenset[str]]:
        # A field is required only if every branch requires it; the values are their union.
        branches = [child.required_values() for child in self.children]
        common = set(branches[0]).intersection(*branches[1:]) if branches else set()
        return {name: frozenset().union(*(b[name] for b in branches)) for name in common}


@dataclass(frozen=True)
class NotNode(Node):
    child: Node

    def compile(self) -> Predicate:
        predicate = self.child.compile()
        return lambda event: not predicate(event)

    def explain(self, event: Event) -> Explanation:
        inner = self.child.explain(event)
        return Explanation("not", not inner.held, (inner,))


def resolve_variables(operand: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(operand, list):
        return [resolve_variables(item, variables, where) for item in operand]
    if isinstance(operand, str) and operand.startswith("$$"):
        return operand[1:]
    if isinstance(operand, str) and _VARIABLE.match(operand):
        name = operand[1:]
        if name not in variables:
            known = ", ".join(f"${key}" for key in sorted(variables)) or "none"
            raise ExpressionError(where, f"unknown variable {operand!r} (known: {known})")
        return variables[name]
    return operand


def _parse_field(path: str, spec: Any, where: str, variables: Mapping[str, Any]) -> FieldNode:
    if not path or any(not part for part in path.split(".")):
        raise ExpressionError(where, f"bad field path {path!r}")
    if isinstance(spec, Mapping):
        spec = dict(spec)
        case_sensitive = spec.pop(CASE_SENSITIVE_KEY, False)
        if not isinstance(case_sensitive, bool):
            raise ExpressionError(f"{where}.{CASE_SENSITIVE_KEY}", "expected true or false")
        if not spec:
            raise ExpressionError(where, "no operator given")
        pairs = list(spec.items())
    elif spec is None:
        raise ExpressionError(where, "no value given (to test absence write {exists: false})")
    else:
        case_sensitive = False
        pairs = [("in" if isinstance(spec, list) else "equals", spec)]
    tests = []
    for name, raw_operand in pairs:
        op_where = f"{where}.{name}" if isinstance(spec, Mapping) else where
        operator = BY_NAME.get(str(name))
        if operator is None:
            raise ExpressionError(
                op_where, f"unknown operator {name!r} (known: {known_names()}, case_sensitive)"
            )
        tests.append(_field_test(path, operator, raw_operand, case_sensitive, op_where, variables))
    return FieldNode(tuple(tests))


def _field_test(
    path: str,
    operator: Operator,
    raw_operand: Any,
    case_sensitive: bool,
    where: str,
    variables: Mapping[str, Any],
) -> FieldTest:
    if operator.nested:
        nested = parse_expression(raw_operand, where, variables).compile()
        test = operator.build(_element_predicate(nested), case_sensitive)
        return FieldTest(path, operator.name, raw_operand, case_sensitive, test)
    if isinstance(raw_operand, Mapping) and set(raw_operand) == {"field"}:
        reference = raw_operand["field"]
        if not operator.references:
            raise ExpressionError(where, f"{operator.name} cannot compare with another field")
        if not isinstance(reference, str) or not reference or ".." in reference:
            raise ExpressionError(f"{where}.field", "expected a field path")
        return FieldTest(path, operator.name, raw_operand, case_sensitive, bool, reference)
    operand = resolve_variables(raw_operand, variables, where)
    try:
        test = operator.build(operand, case_sensitive)
    except OperandError as err:
        message = f"{operator.name} expects {operator.operand}: {err}"
        raise ExpressionError(where, message) from None
    return FieldTest(path, operator.name, operand, case_sensitive, test)


def _parse_list(value: Any, where: str, variables: Mapping[str, Any]) -> tuple[Node, ...]:
    if not isinstance(value, list) or not value:
        raise ExpressionError(where, "expected a non-empty list of expressions")
    return tuple(
        parse_expression(item, f"{where}[{index}]", variables) for index, item in enumerate(value)
    )


def parse_expression(spec: Any, where: str, variables: Mapping[str, Any]) -> Node:
    """Check and build an expression tree; errors name `where` and the key inside it."""
    if not isinstance(spec, Mapping) or not spec:
        raise ExpressionError(where, "expected a mapping of field tests or all/any/not")
    nodes: list[Node] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise ExpressionError(where, f"keys must be text, got {key!r}")
        key_where = f"{where}.{key}"
        if key == "all":
            nodes.append(AllNode(_parse_list(value, key_where, variables)))
        elif key == "any":
            nodes.append(AnyNode(_parse_list(value, key_where, variables)))
        elif key == "not":
            nodes.append(NotNode(parse_expression(value, key_where, variables)))
        else:
            nodes.append(_parse_field(key, value, key_where, variables))
    return nodes[0] if len(nodes) == 1 else AllNode(tuple(nodes))

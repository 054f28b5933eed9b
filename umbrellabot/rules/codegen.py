"""A rule's expression compiled to one Python function, so that a record costs one call per rule
instead of a call per node, getter and operator. Pure.

The function reads each field once, inline. Where the value is text (nearly always), the test
is the operator's inline form (inline.py); where it is missing, the answer is known when the
rule is loaded; anything else (a list, a number, an object, JSON text to walk into, a wildcard
path, a test against another field, an operator without an inline form) goes to the node's
own compiled closure, which is the reference semantics. Operands and field names never become
source text: the code refers to them by generated names.
"""

from __future__ import annotations

from typing import Any, Final

from umbrellabot.model.records import split_path
from umbrellabot.rules.expressions import (
    AllNode,
    AnyNode,
    FieldNode,
    FieldTest,
    Node,
    NotNode,
    Predicate,
)
from umbrellabot.rules.operators import BY_NAME

# A nested path whose walk meets something other than an object: the closure walks it.
_WALK: Final = object()
_DERIVED: Final = {
    "geo.country": "event.country",
    "principal": "event.principal",
    "account": "event.account",
}
_BUILTINS: Final = {"any": any, "dict": dict, "len": len, "str": str}  # all the code uses
MAX_SOURCE: Final = 200_000  # characters; a larger rule keeps its closures


class _Source:
    """The generated code's names: constants, closures and value variables."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_WALK": _WALK, "__builtins__": _BUILTINS}
        self._count = 0

    def name(self, value: Any) -> str:
        self._count += 1
        name = f"_k{self._count}"
        self.namespace[name] = value
        return name

    def variable(self) -> str:
        self._count += 1
        return f"_v{self._count}"


def compile_predicate(match: Node, unless: Node | None = None) -> Predicate:
    """The rule's predicate: `match` holds and `unless` (if any) does not. One generated
    function; the closures of expressions.py when the code cannot be generated."""
    source = _Source()
    try:
        body = _emit(match, source)
        if unless is not None:
            body = f"{body} and not {_emit(unless, source)}"
        if len(body) > MAX_SOURCE:
            raise RecursionError
        code = f"def predicate(event):\n    r = event.record\n    return {body}\n"
        exec(compile(code, "<umbrellabot rule>", "exec"), source.namespace)
    except (RecursionError, SyntaxError, MemoryError):  # too deep for the parser: closures
        return _closures(match, unless)
    predicate: Predicate = source.namespace["predicate"]
    return predicate


def _closures(match: Node, unless: Node | None) -> Predicate:
    matches = match.compile()
    if unless is None:
        return matches
    excluded = unless.compile()
    return lambda event: matches(event) and not excluded(event)


def _emit(node: Node, source: _Source) -> str:
    if isinstance(node, AllNode):
        return "(" + " and ".join(_emit(child, source) for child in node.children) + ")"
    if isinstance(node, AnyNode):
        return "(" + " or ".join(_emit(child, source) for child in node.children) + ")"
    if isinstance(node, NotNode):
        return f"(not {_emit(node.child, source)})"
    if isinstance(node, FieldNode):
        return _emit_field(node, source)
    return f"{source.name(node.compile())}(event)"


def _emit_field(node: FieldNode, source: _Source) -> str:
    closure = f"{source.name(node.compile())}(event)"
    getter = _getter(node.tests[0].path, source)
    inlines = [_inline(test, source) for test in node.tests]
    if getter is None or any(form is None for form in inlines):
        return closure
    value = source.variable()
    text_test = " and ".join(f"({form.format(value=value)})" for form in inlines if form)
    missing = all(test.test([]) for test in node.tests)  # what the tests say of no value
    return (
        f"(({text_test}) if ({value} := {getter}).__class__ is str"
        f" else ({missing} if {value} is None else {closure}))"
    )


def _inline(test: FieldTest, source: _Source) -> str | None:
    """The test on a text value `{value}` as a format string, or None (the closure decides)."""
    operator = BY_NAME[test.operator]
    if operator.inline is None or test.reference is not None:
        return None
    # generated names hold no braces: the form is a safe format string
    form: str = operator.inline(test.operand, test.case_sensitive, "{value}", source.name)
    return form


def _getter(path: str, source: _Source) -> str | None:
    """An expression for the value at `path`: None when missing, _WALK when the walk meets
    something other than an object (the closure then follows it); None for a wildcard path."""
    if path in _DERIVED:
        return _DERIVED[path]
    segments = split_path(path)
    if "*" in segments:
        return None
    expression = f"r.get({source.name(segments[0])})"
    for segment in segments[1:]:
        step = source.variable()
        expression = (
            f"({step}.get({source.name(segment)}) if ({step} := {expression}).__class__ is dict"
            f" else (None if {step} is None else _WALK))"
        )
    return expression

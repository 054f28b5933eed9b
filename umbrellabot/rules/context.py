"""A rule's `context:`: the fields of the event a responder needs first (the user created, the
port and the CIDR opened), shown by the alert, the console table, `show` and the bot. Panther's
`alert_context` is the model; here it is declarative, like the rest of a rule.

    context:
      - {user created: requestParameters.userName}   # a label and a dotted path
      - sourceIPAddress                              # a path, which is its own label

Paths are the ones rules match on (`*` for any key, lists walked, JSON text read). A field the
event lacks is left out; several values are joined with ", "; objects are compact JSON; every
value is cut to VALUE_CHARS, since the text comes from a log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from umbrellabot.model.facts import bounded
from umbrellabot.model.records import Event, ValuesGetter, compile_getter
from umbrellabot.rules.expressions import ExpressionError

VALUE_CHARS = 300
MAX_FIELDS = 12
_SEGMENT = r"(\*|[A-Za-z0-9_-]+)"  # a key, or `*` for any key
_PATH = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")

Context = tuple[tuple[str, str], ...]  # (label, value) in the rule's order


@dataclass(frozen=True)
class ContextField:
    label: str
    path: str
    values: ValuesGetter = field(compare=False, repr=False)


def _field(item: Any, where: str) -> ContextField:
    if isinstance(item, str):
        label, path = item, item
    elif isinstance(item, Mapping) and len(item) == 1:
        ((label, path),) = item.items()
        if not isinstance(label, str) or not label.strip():
            raise ExpressionError(where, "expected a label (text) before the path")
    else:
        raise ExpressionError(where, "expected a dotted path or {label: dotted.path}")
    if not isinstance(path, str) or not _PATH.match(path):
        raise ExpressionError(
            where, f"expected a dotted path such as requestParameters.userName, got {path!r}"
        )
    return ContextField(label.strip(), path, compile_getter(path))


def parse_context(value: Any) -> tuple[ContextField, ...]:
    """`context:` of a rule; raises ExpressionError naming the item."""
    if not isinstance(value, list):
        raise ExpressionError("context", "expected a list of dotted paths or {label: path}")
    if len(value) > MAX_FIELDS:
        raise ExpressionError("context", f"at most {MAX_FIELDS} fields")
    fields = tuple(_field(item, f"context[{index}]") for index, item in enumerate(value))
    labels = [f.label for f in fields]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ExpressionError("context", f"label {repeated[0]!r} is used twice")
    return fields


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def context_of(fields: Sequence[ContextField], event: Event) -> Context:
    """The (label, value) pairs this event has, in the rule's order."""
    found = []
    for item in fields:
        values = item.values(event)
        if values:
            text = ", ".join(dict.fromkeys(_text(value) for value in values))
            found.append((item.label, bounded(text, VALUE_CHARS) or ""))
    return tuple(found)

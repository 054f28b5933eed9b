"""The text a regular expression's every match must contain, so that a test can ask `in` (a
fast substring search) before the regex engine. Pure.

`.+:assumed-role/aws:.+` (a SigmaHQ rule) makes Python's backtracking search try every start
and every length: ~3 µs on each ARN of every record. Any match of it contains
`:assumed-role/aws:`, and most ARNs do not: one `in` answers for them.
"""

from __future__ import annotations

import re

try:  # CPython's own parser of the pattern syntax (`sre_parse` before 3.11)
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another implementation: no prefilter, same results
    _sre = None

_MIN_CHARS = 3  # a shorter literal is in too many texts to be worth the extra test


def required_literal(pattern: str, flags: int = 0) -> str | None:
    """The longest run of literal characters at the top level of `pattern` (outside groups,
    repeats and alternatives), which every match contains; None when there is none worth
    testing, or when case is ignored (the text would have to be folded first)."""
    if _sre is None or flags & re.IGNORECASE:
        return None
    try:
        parsed = _sre.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    if parsed.state.flags & re.IGNORECASE:  # an inline (?i)
        return None
    best, run = "", []
    for op, value in list(parsed):
        if op is _sre.LITERAL:
            run.append(chr(value))
            continue
        best = max(best, "".join(run), key=len)
        run = []
    best = max(best, "".join(run), key=len)
    return best if len(best) >= _MIN_CHARS else None


def required_literals(patterns: list[str], flags: int = 0) -> tuple[str, ...] | None:
    """One required literal per pattern of an alternation (a match of any contains one of
    them), or None when one of the patterns has none."""
    found = [required_literal(pattern, flags) for pattern in patterns]
    if any(literal is None for literal in found):
        return None
    return tuple(literal for literal in found if literal is not None)

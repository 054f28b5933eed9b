"""Sigma rules as they are: a RULES_PATH file that holds `logsource` and `detection` is read with
pySigma and becomes a `Rule` whose match is compiled by sigma_compile.py.

- The rule's id is its Sigma `id` (the UUID), in `xrules`, alerts and `rules list`.
- `level` is the severity (informational is info), `tags` the tags, `falsepositives` and
  `references` go into the runbook, `author` is kept: alerts say "Sigma rule by <author>", as the
  Detection Rule License 1.1 asks.
- `status: deprecated` or `unsupported`: skipped with one line. A rule umbrellabot cannot
  evaluate (an old pipe aggregation such as `| count() by`, a placeholder, another log source):
  refused with one line naming the file, the id and what is unsupported; with
  SIGMA_SKIP_UNSUPPORTED it is skipped with that line and the rest load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umbrellabot.model.severity import Severity
from umbrellabot.rules.expressions import AnyNode, ExpressionError, Node

if TYPE_CHECKING:
    from sigma.rule import SigmaRule

SIGMA_KIND = "sigma"
SIGMA_LEVELS = {
    "informational": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_SKIPPED_STATUSES = ("deprecated", "unsupported")


class SigmaUnsupported(ExpressionError):
    """Something in a Sigma rule that umbrellabot cannot evaluate; the text says what."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(where, f"unsupported: {message}")


@dataclass(frozen=True)
class Skipped:
    """A Sigma rule left out, and why (one line for the log and `rules list`)."""

    id: str
    source: Path
    reason: str


def is_sigma(spec: Mapping[str, Any]) -> bool:
    return "detection" in spec and "logsource" in spec


@dataclass(frozen=True)
class SigmaParts:
    """What a Rule takes from a Sigma rule."""

    id: str
    name: str | None  # what correlation rules may call it
    title: str
    severity: Severity
    match: Node
    description: str
    tags: tuple[str, ...]
    references: tuple[str, ...]
    runbook: str
    author: str | None


def _unsupported_status(spec: Mapping[str, Any]) -> str | None:
    status = str(spec.get("status") or "").lower()
    return f"status: {status}" if status in _SKIPPED_STATUSES else None


def read_sigma(spec: Mapping[str, Any]) -> SigmaParts | str:
    """The parts of a Sigma rule, or the reason it is skipped (its status). Raises
    SigmaUnsupported for what umbrellabot cannot evaluate, ExpressionError for a broken rule."""
    if not spec.get("id"):
        raise ExpressionError("id", "a Sigma rule needs its id (the UUID) to be traced")
    status = _unsupported_status(spec)
    if status is not None:
        return status
    _check_logsource(spec.get("logsource"))
    # pySigma is imported only when there is a Sigma rule: `scan` and `rules` start fast
    from sigma.exceptions import SigmaError, SigmaModifierError
    from sigma.rule import SigmaRule

    from umbrellabot.rules.sigma_compile import compile_condition

    try:
        rule = SigmaRule.from_dict(dict(spec))
        conditions = [condition.parse() for condition in rule.detection.parsed_condition]
    except SigmaError as err:
        message = str(err).split("\n")[0]
        if isinstance(err, SigmaModifierError):
            raise SigmaUnsupported("detection", message) from None
        if "pipe syntax" in message:
            raise SigmaUnsupported(
                "detection.condition",
                "an old pipe aggregation (`| count() …`, `| near`); Sigma correlation rules"
                " replace it",
            ) from None
        raise ExpressionError("detection", message) from None
    match = _one_of([compile_condition(tree) for tree in conditions if tree is not None])
    level = rule.level.name.lower() if rule.level else "medium"
    return SigmaParts(
        id=str(rule.id or spec["id"]),
        name=str(rule.name) if rule.name else None,
        title=rule.title,
        severity=SIGMA_LEVELS.get(level, Severity.MEDIUM),
        match=match,
        description=(rule.description or "").strip(),
        tags=tuple(f"{tag.namespace}.{tag.name}" for tag in rule.tags),
        references=tuple(rule.references or ()),
        runbook=_runbook(rule),
        author=rule.author or None,
    )


def _one_of(trees: list[Node]) -> Node:
    if not trees:
        raise ExpressionError("detection.condition", "no condition left to evaluate")
    return trees[0] if len(trees) == 1 else AnyNode(tuple(trees))


def _check_logsource(logsource: Any) -> None:
    if not isinstance(logsource, Mapping):
        raise ExpressionError("logsource", "expected a mapping (product: aws, service: cloudtrail)")
    product, service = logsource.get("product"), logsource.get("service")
    if str(product).lower() != "aws" or str(service or "cloudtrail").lower() != "cloudtrail":
        shown = ", ".join(f"{k}: {v}" for k, v in logsource.items())
        raise SigmaUnsupported(
            "logsource", f"{shown} is not CloudTrail (product: aws, service: cloudtrail)"
        )


def _runbook(rule: SigmaRule) -> str:
    lines = []
    if rule.falsepositives:
        lines.append("False positives: " + "; ".join(map(str, rule.falsepositives)))
    if rule.references:
        lines.append("References: " + " ".join(map(str, rule.references)))
    return "\n".join(lines)

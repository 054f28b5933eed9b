"""Which channel an alert goes to: ordered routes in a YAML file (ROUTING_PATH), first match wins;
then a rule's own `channel:`; then SLACK_CHANNEL. Pure, apart from reading the file.

    routes:
      - channel: C0SECCRIT         # a channel ID, or a name (#security-critical)
        min_severity: critical     # or severity: [high, critical]
      - channel: "#prod-alerts"
        account: ["111122223333"]
        rule: ["iam-*", "root-*"]  # ids or globs
      - channel: "#network"
        tag: [network]             # any of the rule's tags
        region: [us-east-1]

Every condition of a route must hold; a list is "any of". The file is checked at load like the
rules: every problem at once, each naming the file, the route and the key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from umbrellabot.errors import ProblemsError
from umbrellabot.model.alerts import Alert
from umbrellabot.model.severity import Severity
from umbrellabot.rules.catalog import YAML_LOADER

_CHANNEL = re.compile(r"^(?:[CGD][A-Z0-9]{6,}|#?[a-z0-9][a-z0-9._-]{0,79})$")
_KEYS = frozenset({"channel", "severity", "min_severity", "rule", "tag", "account", "region"})


class RoutingError(ProblemsError):
    label = "invalid route"


@dataclass(frozen=True)
class Route:
    channel: str
    severities: frozenset[Severity] = frozenset()  # empty: any
    min_severity: Severity | None = None
    rules: tuple[str, ...] = ()  # ids or globs; empty: any
    tags: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    def matches(self, alert: Alert, tags: Sequence[str]) -> bool:
        return (
            (not self.severities or alert.severity in self.severities)
            and (self.min_severity is None or alert.severity >= self.min_severity)
            and (not self.rules or any(fnmatch.fnmatchcase(alert.rule_id, r) for r in self.rules))
            and (not self.tags or bool(self.tags.intersection(tags)))
            and (not self.accounts or (alert.account or "") in self.accounts)
            and (not self.regions or (alert.region or "") in self.regions)
        )


class Router:
    """Routes, then the rules' own channels, then the default channel."""

    def __init__(
        self,
        routes: Sequence[Route],
        default: str,
        *,
        rule_tags: Mapping[str, Sequence[str]] | None = None,
        rule_channels: Mapping[str, str] | None = None,
    ) -> None:
        self.routes = list(routes)
        self.default = default
        self._tags = dict(rule_tags or {})
        self._channels = dict(rule_channels or {})

    def channel_for(self, alert: Alert) -> str:
        tags = self._tags.get(alert.rule_id, ())
        for route in self.routes:
            if route.matches(alert, tags):
                return route.channel
        return self._channels.get(alert.rule_id) or self.default


def _texts(value: Any, key: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str | int) and str(item).strip() for item in items):
        raise ValueError(f"{key}: expected text or a list of text")
    return tuple(str(item).strip() for item in items)


def _severity(text: str, key: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from None


def parse_route(spec: Any) -> Route:
    """One route; raises ValueError naming the key."""
    if not isinstance(spec, Mapping):
        raise ValueError("expected a mapping with channel and conditions")
    unknown = sorted(set(map(str, spec)) - _KEYS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(_KEYS))})")
    channel = spec.get("channel")
    if not isinstance(channel, str) or not _CHANNEL.match(channel.strip()):
        raise ValueError("channel: expected a channel ID (C0123ABCD) or a name (#alerts)")
    return Route(
        channel=channel.strip(),
        severities=frozenset(_severity(s, "severity") for s in _texts(spec["severity"], "severity"))
        if "severity" in spec
        else frozenset(),
        min_severity=_severity(str(spec["min_severity"]), "min_severity")
        if "min_severity" in spec
        else None,
        rules=_texts(spec["rule"], "rule") if "rule" in spec else (),
        tags=frozenset(_texts(spec["tag"], "tag")) if "tag" in spec else frozenset(),
        accounts=frozenset(_texts(spec["account"], "account"))
        if "account" in spec
        else frozenset(),
        regions=frozenset(_texts(spec["region"], "region")) if "region" in spec else frozenset(),
    )


def load_routes(path: Path) -> list[Route]:
    """The routes of one file; raises RoutingError with every problem, each naming the file,
    the route (#n) and the key."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except OSError as err:
        raise RoutingError([f"{path}: cannot read: {err.strerror or err}"]) from None
    except yaml.YAMLError as err:
        raise RoutingError([f"{path}: invalid YAML: {err}".replace("\n", " ")]) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("routes"), list):
        raise RoutingError([f"{path}: expected a mapping with a routes: list"])
    routes, problems = [], []
    for index, spec in enumerate(data["routes"]):
        try:
            routes.append(parse_route(spec))
        except ValueError as err:
            problems.append(f"{path}: route #{index + 1}: {err}")
    if problems:
        raise RoutingError(problems)
    return routes

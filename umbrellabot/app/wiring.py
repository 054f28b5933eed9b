"""Builds the adapters and the rule set from the settings, for the CLI commands and the daemon."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from umbrellabot.config import Settings
from umbrellabot.enrich.geoip import CountryLookup, IpstackGeo, OfflineGeo
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules
from umbrellabot.rules.ruleset import RuleSet


def rule_paths(settings: Settings, override: Sequence[Path] | None = None) -> list[Path]:
    if override:
        return list(override)
    return list(settings.rules_path) or [default_rules_path()]


def load_rule_list(settings: Settings, override: Sequence[Path] | None = None) -> list[Rule]:
    """Every rule (enabled or not) under the configured paths; raises rules.RuleError."""
    return load_rules(rule_paths(settings, override), settings.rule_variables())


def load_rule_set(settings: Settings, override: Sequence[Path] | None = None) -> RuleSet:
    return RuleSet(load_rule_list(settings, override))


def build_geo(settings: Settings) -> CountryLookup:
    offline = OfflineGeo()
    if settings.ipstack_access_key is None:
        return offline
    return IpstackGeo(
        settings.ipstack_access_key.get_secret_value(),
        base_url=settings.ipstack_api_url,
        max_calls=settings.ipstack_max_calls,
        timeout_s=settings.ipstack_timeout_s,
        fallback=offline,
    )

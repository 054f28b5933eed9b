"""RULES_PATH as layers: `default,./mine.yaml` keeps the default pack and lays a user's rules
over it. A rule whose id an earlier layer defined replaces that rule, and `{id: x, enabled:
false}` turns it off, so a team tunes the pack without copying it out of site-packages. Every
rule says where it came from and what changed it (`rules list`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from umbrellabot.rules.rule import Rule


@dataclass(frozen=True)
class Disabled:
    """`{id: x, enabled: false}` in a later layer: rule x of an earlier one, turned off."""

    id: str
    source: Path


def merge_layers(layers: Sequence[Sequence[Rule | Disabled]]) -> tuple[list[Rule], list[str]]:
    """The rules of every layer, later ones over earlier ones, in first-defined order, and the
    problems (a layer turning off a rule no earlier one defines)."""
    merged: dict[str, Rule] = {}
    problems: list[str] = []
    for layer in layers:
        for item in layer:
            earlier = merged.get(item.id)
            if isinstance(item, Disabled):
                if earlier is None:
                    problems.append(
                        f"{item.source}: rule {item.id!r}: enabled: false turns off a rule an"
                        " earlier RULES_PATH entry defines, and none defines it"
                    )
                    continue
                merged[item.id] = dataclasses.replace(
                    earlier, enabled=False, disabled_in=item.source
                )
            elif earlier is not None:
                merged[item.id] = dataclasses.replace(item, replaces=earlier.source)
            else:
                merged[item.id] = item
    return list(merged.values()), problems

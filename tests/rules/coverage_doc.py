"""The generated parts of docs/coverage.md: the Panther rules the pack covers (from each rule's
`panther_rules`) and the MITRE ATT&CK map (from the pack's `attack.<tactic>` tags). The test
checks that the document holds them as printed here; `python tests/rules/coverage_doc.py`
prints them after a change to the pack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from umbrellabot.rules.rule import Rule, default_rules_path, load_rules

# ATT&CK for cloud (IaaS) tactics, in the matrix's order
TACTICS = (
    ("initial-access", "Initial Access (TA0001)"),
    ("execution", "Execution (TA0002)"),
    ("persistence", "Persistence (TA0003)"),
    ("privilege-escalation", "Privilege Escalation (TA0004)"),
    ("defense-evasion", "Defense Evasion (TA0005)"),
    ("credential-access", "Credential Access (TA0006)"),
    ("discovery", "Discovery (TA0007)"),
    ("lateral-movement", "Lateral Movement (TA0008)"),
    ("collection", "Collection (TA0009)"),
    ("exfiltration", "Exfiltration (TA0010)"),
    ("impact", "Impact (TA0040)"),
)
COVERED_START, COVERED_END = "<!-- covered: generated -->", "<!-- /covered -->"
MITRE_START, MITRE_END = "<!-- mitre: generated -->", "<!-- /mitre -->"


def pack() -> list[Rule]:
    return load_rules([default_rules_path()], {"allowed_countries": ["US"]})


def covered_table(rules: Sequence[Rule]) -> str:
    by_panther: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        for panther_id in rule.panther_rules:
            by_panther[panther_id].append(rule.id)
    lines = ["| Panther rule | umbrellabot rule |", "|---|---|"]
    lines += [
        f"| `{panther_id}` | {', '.join(f'`{r}`' for r in ids)} |"
        for panther_id, ids in sorted(by_panther.items())
    ]
    return "\n".join(lines)


def mitre_table(rules: Sequence[Rule]) -> str:
    def tactics(rule: Rule) -> set[str]:  # Sigma's old `attack.defense_evasion` too
        return {tag.removeprefix("attack.").replace("_", "-") for tag in rule.tags}

    lines = ["| Tactic | Rules |", "|---|---|"]
    for tag, name in TACTICS:
        ids = sorted(rule.id for rule in rules if tag in tactics(rule))
        lines.append(f"| {name} | {', '.join(f'`{i}`' for i in ids) or 'none yet'} |")
    known = {tag for tag, _ in TACTICS}
    untagged = sorted(rule.id for rule in rules if not known & tactics(rule))
    lines.append(f"| (no tactic tag) | {', '.join(f'`{i}`' for i in untagged) or 'none'} |")
    return "\n".join(lines)


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


if __name__ == "__main__":
    rules = pack()
    print(f"{COVERED_START}\n{covered_table(rules)}\n{COVERED_END}\n")
    print(f"{MITRE_START}\n{mitre_table(rules)}\n{MITRE_END}")

"""The generated parts of docs/coverage.md: the Panther rules the pack covers (from each rule's
`panther_rules`) and the MITRE ATT&CK map (from the pack's `attack.<tactic>` tags and the
tactics Panther gives the rules they cover, panther_tactics.py). The test
checks that the document holds them as printed here; `python tests/rules/coverage_doc.py`
prints them after a change to the pack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from panther_tactics import PANTHER_TACTICS

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


def ours(rule: Rule) -> set[str]:
    """The tactics of the rule's own tags (Sigma's old `attack.defense_evasion` too)."""
    return {tag.removeprefix("attack.").replace("_", "-") for tag in rule.tags}


def panthers(rule: Rule) -> set[str]:
    """The tactics Panther gives the rules this one covers."""
    slug_of = {name.rsplit("(", 1)[1].rstrip(")"): slug for slug, name in TACTICS}
    return {
        slug_of[tactic]
        for panther_id in rule.panther_rules
        for tactic in PANTHER_TACTICS.get(panther_id, ())
    }


def mitre_table(rules: Sequence[Rule]) -> str:
    """Tactic -> rules, from our tags and Panther's (a rule there by Panther's alone: *)."""
    lines = ["| Tactic | Rules |", "|---|---|"]
    for tag, name in TACTICS:
        found = sorted(
            (rule for rule in rules if tag in ours(rule) | panthers(rule)), key=lambda r: r.id
        )
        ids = [f"`{r.id}`" + ("" if tag in ours(r) else "*") for r in found]
        lines.append(f"| {name} | {', '.join(ids) or 'none yet'} |")
    known = {tag for tag, _ in TACTICS}
    untagged = sorted(rule.id for rule in rules if not known & (ours(rule) | panthers(rule)))
    lines.append(f"| (no tactic tag) | {', '.join(f'`{i}`' for i in untagged) or 'none'} |")
    return "\n".join(lines)


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


if __name__ == "__main__":
    rules = pack()
    print(f"{COVERED_START}\n{covered_table(rules)}\n{COVERED_END}\n")
    print(f"{MITRE_START}\n{mitre_table(rules)}\n{MITRE_END}")

"""docs/coverage.md stays true: its generated tables are the pack's, every Panther CloudTrail rule
of the shared test cases is covered or listed with a reason, and what it names exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from coverage_doc import (
    COVERED_END,
    COVERED_START,
    MITRE_END,
    MITRE_START,
    covered_table,
    mitre_table,
    pack,
    section,
)

from umbrellabot.query.detections import load_detections

DOC = REPO_ROOT / "docs" / "coverage.md"
_ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_generated_tables_are_the_packs(doc: str) -> None:
    rules = pack()
    assert section(doc, COVERED_START, COVERED_END) == covered_table(rules), (
        "docs/coverage.md is behind the pack: run python tests/rules/coverage_doc.py"
    )
    assert section(doc, MITRE_START, MITRE_END) == mitre_table(rules)


def test_every_panther_rule_is_covered_or_listed_once_with_a_reason(
    doc: str, shared_data: Path
) -> None:
    cases = shared_data / "panther" / "panther_cloudtrail_test_cases.jsonl"
    panther = {json.loads(line)["rule_id"] for line in cases.open()}
    covered = set(_ROW.findall(section(doc, COVERED_START, COVERED_END)))
    listed_part = doc.split("## Not covered", 1)[1].split("## MITRE", 1)[0]
    listed = _ROW.findall(listed_part)
    assert len(listed) == len(set(listed)), "a Panther rule is listed twice"
    assert not covered & set(listed), covered & set(listed)
    assert panther == covered | set(listed), sorted(panther ^ (covered | set(listed)))
    for line in listed_part.splitlines():
        if line.startswith("| `"):
            assert len(line.split(" | ")[-1].strip(" |")) > 10, f"no reason: {line}"


def test_every_rule_and_detection_it_names_exists(doc: str) -> None:
    names = {rule.id for rule in pack()}
    names |= {d.id for d in load_detections([REPO_ROOT / "config" / "detections"])}
    listed_part = doc.split("## Not covered", 1)[1].split("## MITRE", 1)[0]
    reasons = [line.split(" | ")[-1] for line in listed_part.splitlines() if line.startswith("| `")]
    named = {name for reason in reasons for name in re.findall(r"`([a-z0-9-]+)`", reason)}
    assert named and named <= names, sorted(named - names)

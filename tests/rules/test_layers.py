"""My own rules beside the pack: `RULES_PATH=default,./mine.yaml` keeps the 79 default rules, a
rule with a default id replaces it, `{id, enabled: false}` turns one off, `rules list` says
where each came from, and `rules new` writes a skeleton that passes its own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from umbrellabot import cli
from umbrellabot.rules.rule import RuleError, default_rules_path, load_rules

VARIABLES = {"allowed_countries": ["US"]}
MINE = """\
rules:
  - id: iam-user-created            # a default rule's id: mine replaces it
    title: IAM user created (ours)
    severity: critical
    match: {eventName: CreateUser}
  - id: access-denied               # turned off
    enabled: false
  - id: our-own
    title: Ours
    severity: low
    match: {eventName: Nothing}
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UMBRELLABOT_ENV_FILE", raising=False)
    monkeypatch.delenv("RULES_PATH", raising=False)
    return tmp_path


def test_mine_over_the_default_pack(here: Path) -> None:
    (here / "mine.yaml").write_text(MINE)
    default = load_rules([default_rules_path()], VARIABLES)
    rules = load_rules([default_rules_path(), here / "mine.yaml"], VARIABLES)
    by_id = {rule.id: rule for rule in rules}
    assert len(rules) == len(default) + 1
    assert by_id["iam-user-created"].title == "IAM user created (ours)"
    assert by_id["iam-user-created"].replaces == default_rules_path() / "identity.yaml"
    assert by_id["access-denied"].enabled is False
    assert by_id["access-denied"].disabled_in == here / "mine.yaml"
    assert [rule.id for rule in rules][: len(default)] == [rule.id for rule in default]


def test_rules_path_accepts_the_word_default_and_list_says_where_each_came_from(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "mine.yaml").write_text(MINE)
    monkeypatch.setenv("RULES_PATH", "default,./mine.yaml")
    monkeypatch.setenv("COLUMNS", "250")
    assert cli.main(["rules", "list"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert len(rows) == 98  # 96 default rules and ours (one replaced, none lost)
    assert "default/identity.yaml" in rows["root-console-login"]
    assert "mine.yaml (replaces default/identity.yaml)" in rows["iam-user-created"]
    assert "default/identity.yaml (disabled in mine.yaml)" in rows["access-denied"]
    assert "│ no " in rows["access-denied"]
    assert "mine.yaml" in rows["our-own"]


def test_a_disable_without_a_rule_to_disable_is_an_error(here: Path) -> None:
    (here / "off.yaml").write_text("rules:\n  - {id: no-such-rule, enabled: false}\n")
    with pytest.raises(RuleError) as caught:
        load_rules([default_rules_path(), here / "off.yaml"], VARIABLES)
    assert "off.yaml: rule 'no-such-rule': enabled: false turns off a rule" in str(caught.value)


def test_ids_stay_unique_within_one_entry(here: Path) -> None:
    (here / "two.yaml").write_text(MINE + MINE.split("rules:\n", 1)[1])
    with pytest.raises(RuleError, match="duplicate id"):
        load_rules([here / "two.yaml"], VARIABLES)


def test_rules_new_writes_a_skeleton_that_passes_its_tests(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["rules", "new", "team-sg-opened"]) == cli.EXIT_OK
    written = here / "team-sg-opened.yaml"
    assert "RULES_PATH=default,./team-sg-opened.yaml" in capsys.readouterr().out
    [rule] = load_rules([written], VARIABLES)
    assert rule.id == "team-sg-opened" and rule.context and len(rule.tests) == 2
    assert {case.expect for case in rule.tests} == {True, False}
    assert cli.main(["rules", "test", str(written)]) == cli.EXIT_OK
    capsys.readouterr()

    written.write_text("mine, edited")
    assert cli.main(["rules", "new", "team-sg-opened"]) == cli.EXIT_USAGE
    assert "exists: not overwritten" in capsys.readouterr().err
    assert written.read_text() == "mine, edited"

    assert cli.main(["rules", "new", "x", "-"]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("# x: a rule for umbrellabot")
    assert cli.main(["rules", "new", "../escape"]) == cli.EXIT_USAGE
    assert "is not a rule id for a new file" in capsys.readouterr().err

"""A regex test asks `in` before the regex engine only with text every match contains, so its
answers are the regex's own."""

from __future__ import annotations

import re

import pytest

from umbrellabot.rules.operators import build_regex
from umbrellabot.rules.regex_literals import required_literal, required_literals


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (".+:assumed-role/aws:.+", ":assumed-role/aws:"),
        (r"^arn:aws:iam::\d{12}:root$", "arn:aws:iam::"),
        (r"evil\.example\.com", "evil.example.com"),
        ("a|bcdef", None),  # an alternative at the top: neither side is required
        ("(?:abcd)+x", None),  # inside a repeat
        ("(?i)abcdef", None),  # case ignored: the text would have to be folded
        ("ab", None),  # too short to be worth it
        ("abc(?=def)", "abc"),
    ],
)
def test_required_literal(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal
    if literal is not None:  # every match does contain it
        sample = "x:assumed-role/aws:y arn:aws:iam::111122223333:root evil.example.com abcdef"
        for match in re.finditer(pattern, sample):
            assert literal in match.group(0)


def test_ignorecase_and_alternations_of_patterns() -> None:
    assert required_literal("abcdef", re.IGNORECASE) is None
    assert required_literals(["abcd.*", "x+efgh"]) == ("abcd", "efgh")
    assert required_literals(["abcd.*", "x+"]) is None


@pytest.mark.parametrize(
    ("patterns", "case_sensitive", "text", "expected"),
    [
        (
            [".+:assumed-role/aws:.+"],
            True,
            "arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1",
            True,
        ),
        ([".+:assumed-role/aws:.+"], True, "arn:aws:sts::1:assumed-role/Admin/alice", False),
        ([".+:assumed-role/aws:.+"], False, "ARN:AWS:STS::1:ASSUMED-ROLE/AWS:X", True),
        (["^abc", "xyz$"], True, "--xyz", True),
        (["^abc", "xyz$"], True, "--xyz-", False),
    ],
)
def test_regex_answers_are_the_engines(
    patterns: list[str], case_sensitive: bool, text: str, expected: bool
) -> None:
    assert build_regex(patterns, case_sensitive)([text]) is expected
    flags = 0 if case_sensitive else re.IGNORECASE
    assert any(re.search(p, text, flags) for p in patterns) is expected

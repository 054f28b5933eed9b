"""The rule language: every operator, paths, derived fields, variables, and every load error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from umbrellabot.model.records import Event
from umbrellabot.model.severity import Severity
from umbrellabot.rules.expressions import ExpressionError, parse_expression
from umbrellabot.rules.operators import BY_NAME, OPERATORS
from umbrellabot.rules.rule import RuleError, load_rules
from umbrellabot.rules.ruleset import RuleSet

VARIABLES = {"allowed_countries": ["US", "CA"]}


def holds(spec: dict[str, Any], record: dict[str, Any], country: str | None = None) -> bool:
    return parse_expression(spec, "match", VARIABLES).compile()(Event(record, country))


RECORD: dict[str, Any] = {
    "eventName": "DescribeInstances",
    "eventSource": "ec2.amazonaws.com",
    "sourceIPAddress": "203.0.113.7",
    "readOnly": True,
    "mfa": "true",
    "port": "22",
    "count": 5,
    "userAgent": "aws-cli/2.15 Python/3.11",
    "literal": "a*b?c\\d",
    "empty": "",
    "requestParameters": {
        "ipPermissions": {
            "items": [
                {"fromPort": 22, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}},
                {"fromPort": 443, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}},
            ]
        },
        "policyDocument": '{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        "tags": ["a", "b"],
        "nested": {"x": {"cidrIp": "2001:db8::1"}, "y": {"cidrIp": "192.0.2.1"}},
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"eventName": "describeinstances"}, True),
        ({"eventName": {"equals": "describeinstances", "case_sensitive": True}}, False),
        ({"eventName": {"eq": "DescribeInstances", "case_sensitive": True}}, True),
        ({"eventName": {"not_equals": "DescribeInstances"}}, False),
        ({"eventName": {"ne": "CreateUser"}}, True),
        ({"missingField": {"not_equals": "x"}}, True),
        ({"eventName": ["CreateUser", "describeInstances"]}, True),
        ({"eventName": {"in": ["CreateUser"]}}, False),
        ({"eventName": {"one_of": ["CreateUser", "DescribeInstances"]}}, True),
        ({"eventName": {"not_in": ["CreateUser"]}}, True),
        ({"eventName": {"not_in": ["describeinstances"]}}, False),
        ({"eventName": {"glob": "Describe*"}}, True),
        ({"eventName": {"glob": ["Get*", "List*"]}}, False),
        ({"eventName": {"glob": "describe*", "case_sensitive": True}}, False),
        ({"eventName": {"glob": "Describe?nstances"}}, True),
        ({"eventName": {"prefix": "describe"}}, True),
        ({"eventName": {"startswith": ["Get", "List"]}}, False),
        ({"eventName": {"suffix": "INSTANCES"}}, True),
        ({"eventName": {"endswith": "Instances", "case_sensitive": True}}, True),
        ({"userAgent": {"contains": "PYTHON/"}}, True),
        ({"userAgent": {"contains": ["boto3", "terraform"]}}, False),
        ({"userAgent": {"regex": r"aws-cli/2\.\d+"}}, True),
        ({"userAgent": {"re": "^python"}}, False),
        ({"userAgent": {"regex": "AWS-CLI", "case_sensitive": True}}, False),
        ({"userAgent": {"exists": True}}, True),
        ({"errorCode": {"exists": False}}, True),
        ({"errorCode": {"exists": True}}, False),
        ({"userAgent": {"wildcard": "aws-cli/2.?? python*"}}, True),
        ({"userAgent": {"wildcard": "aws-cli"}}, False),  # the whole value, not a part
        ({"eventName": {"wildcard": "describe*", "case_sensitive": True}}, False),
        ({"literal": {"wildcard": r"a\*b\?c\\d"}}, True),  # escaped: literal * ? \\
        ({"literal": {"wildcard": r"a\*b\?c\\"}}, False),
        ({"errorCode": {"present": False}}, True),
        ({"empty": {"present": True}}, True),  # "" is a value (exists: false says absent)
        ({"empty": {"exists": False}}, True),
        ({"requestParameters": {"contains": '"fromPort":443'}}, True),  # an object's JSON
        ({"count": {"gt": 4}}, True),
        ({"count": {"gte": 5, "lte": 5}}, True),
        ({"count": {"lt": 5}}, False),
        ({"port": {"gt": 21}}, True),  # numeric text compares as a number
        ({"eventName": {"gt": 1}}, False),  # text that is no number never matches
        ({"sourceIPAddress": {"cidr": "203.0.113.0/24"}}, True),
        ({"sourceIPAddress": {"in_cidr": ["10.0.0.0/8", "2001:db8::/32"]}}, False),
        ({"requestParameters.nested.*.cidrIp": {"cidr": "2001:db8::/32"}}, True),
        ({"eventName": {"cidr": "0.0.0.0/0"}}, False),  # not an address: no match, no error
        # booleans and their text are equal; so are numbers and their text
        ({"readOnly": "true"}, True),
        ({"readOnly": "TRUE"}, True),
        ({"mfa": True}, True),
        ({"port": 22}, True),
        ({"count": "5"}, True),
        # lists fan out; any value may satisfy
        ({"requestParameters.ipPermissions.items.ipRanges.items.cidrIp": "0.0.0.0/0"}, True),
        ({"requestParameters.ipPermissions.items.fromPort": 3389}, False),
        ({"requestParameters.tags": "b"}, True),
        # JSON held in text is followed
        ({"requestParameters.policyDocument.Statement.Action": "*"}, True),
        ({"requestParameters.policyDocument.Statement.Effect": "Deny"}, False),
        # combinators
        ({"all": [{"eventName": {"glob": "Describe*"}}, {"readOnly": True}]}, True),
        ({"any": [{"eventName": "CreateUser"}, {"count": {"gt": 100}}]}, False),
        ({"not": {"eventName": "CreateUser"}}, True),
        ({"eventName": {"glob": "Describe*"}, "readOnly": False}, False),
        ({"any": [{"all": [{"count": 5}, {"not": {"port": 23}}]}, {"eventName": "x"}]}, True),
    ],
)
def test_operators_and_paths(spec: dict[str, Any], expected: bool) -> None:
    assert holds(spec, RECORD) is expected


def test_every_operator_and_alias_is_exercised_above() -> None:
    source = Path(__file__).read_text()
    for name in BY_NAME:
        assert f'"{name}"' in source, f"operator {name} has no test"
    assert len(OPERATORS) >= 15


def test_derived_fields() -> None:
    root = {"userIdentity": {"type": "Root", "accountId": "111122223333"}}
    assert holds({"principal": "root", "account": "111122223333"}, root)
    assumed = {
        "recipientAccountId": "444455556666",
        "userIdentity": {
            "type": "AssumedRole",
            "accountId": "111122223333",
            "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
        },
    }
    assert holds({"principal": "Admin/alice", "account": "444455556666"}, assumed)
    assert holds({"geo.country": {"exists": True, "not_in": "$allowed_countries"}}, {}, "DE")
    assert not holds({"geo.country": {"exists": True, "not_in": "$allowed_countries"}}, {}, "CA")
    assert not holds({"geo.country": {"exists": True, "not_in": "$allowed_countries"}}, {}, None)


def test_wrong_types_never_raise() -> None:
    odd = {"eventName": ["a", {"b": 1}, None, 3.5], "count": {"x": 1}, "requestParameters": "{bad"}
    for spec in (
        {"eventName": {"glob": "a*"}},
        {"count": {"gt": 1}},
        {"count": {"cidr": "10.0.0.0/8"}},
        {"requestParameters.policy.Action": "*"},
        {"eventName": 3.5},
    ):
        holds(spec, odd)  # must simply answer


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        ({"eventName": {"equal": "x"}}, "match.eventName.equal", "unknown operator 'equal'"),
        ({"ip": {"cidr": "10.0.0.0/33"}}, "match.ip.cidr", "bad CIDR '10.0.0.0/33'"),
        ({"ua": {"regex": "("}}, "match.ua.regex", "bad regular expression '('"),
        ({"n": {"gt": "five"}}, "match.n.gt", "expected a number"),
        ({"n": {"gt": True}}, "match.n.gt", "expected a number"),
        ({"n": {"exists": "yes"}}, "match.n.exists", "expected true or false"),
        ({"n": {"equals": ["a"]}}, "match.n.equals", "use `in` for a list"),
        ({"n": {"in": []}}, "match.n.in", "non-empty list"),
        ({"n": {"in": [{"a": 1}]}}, "match.n.in", "got dict"),
        ({"n": {"glob": 5}}, "match.n.glob", "expected text"),
        ({"n": {"in": "$nope"}}, "match.n.in", "unknown variable '$nope'"),
        ({"n": None}, "match.n", "exists: false"),
        ({"n": {}}, "match.n", "no operator"),
        ({"n": {"equals": "a", "case_sensitive": "yes"}}, "match.n.case_sensitive", "true or"),
        ({"all": {"a": 1}}, "match.all", "non-empty list"),
        ({"any": []}, "match.any", "non-empty list"),
        ({"all": [{"a": 1}, "text"]}, "match.all[1]", "expected a mapping"),
        ({"not": [{"a": 1}]}, "match.not", "expected a mapping"),
        ({"a..b": 1}, "match.a..b", "bad field path"),
    ],
)
def test_expression_errors_name_the_key(spec: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(spec, "match", VARIABLES)
    assert caught.value.where == where
    assert message in caught.value.message


def test_literal_dollar_and_variable_lists() -> None:
    assert holds({"price": "$$5"}, {"price": "$5"})
    assert holds({"c": {"in": "$allowed_countries"}}, {"c": "ca"})


GOOD_RULE = """
id: {id}
title: A rule
severity: {severity}
match: {{eventName: CreateUser}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: r1\ntitle: t\nseverity: high\n", "rule 'r1': match: missing required key"),
        ("id: r1\ntitle: t\nseverity: hgh\nmatch: {a: 1}\n", "rule 'r1': severity: unknown"),
        ("id: r1\ntitle: t\nseverity: 3\nmatch: {a: 1}\n", "rule 'r1': severity: expected text"),
        ("id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\nunles: {b: 1}\n", "rule 'r1': unles:"),
        ("id: r1\ntitle: [t]\nseverity: low\nmatch: {a: 1}\n", "rule 'r1': title: expected text"),
        ("id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\nenabled: 'no'\n", "enabled: expected"),
        ("id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\ntags: web\n", "tags: expected a list"),
        ("id: r1\ntitle: t\nseverity: low\nmatch: {a: {eq: 1, bad: 2}}\n", "match.a.bad: unknown"),
        ("id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\nunless: {a: {gt: x}}\n", "unless.a.gt"),
        (
            "id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\ntests: [{expect: 1, record: {}}]\n",
            "tests[0].expect: expected true or false",
        ),
        (
            "id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\ntests: [{expect: true, record: 3}]\n",
            "tests[0].record",
        ),
        (
            "id: r1\ntitle: t\nseverity: low\nmatch: {a: 1}\ntests: [{expect: true, log: {}}]\n",
            "tests[0].log: unknown key",
        ),
        ("id: [r1]\ntitle: t\nseverity: low\nmatch: {a: 1}\n", "id: expected text"),
        ("title: t\nseverity: low\nmatch: {a: 1}\n", "rule #1: id: missing required key"),
        ("- a list\n", "expected a rule"),
        ("rules: {id: r1}\n", "rules: expected a list"),
        ("rules: [3]\n", "rule #1: expected a mapping"),
        ("id: r1\ntitle: t\n  bad: [indent\n", "invalid YAML"),
    ],
)
def test_rule_file_errors_name_file_rule_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(RuleError) as caught:
        load_rules([path], VARIABLES)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_all_problems_are_reported_and_nothing_loads(tmp_path: Path) -> None:
    write(tmp_path / "pack", "a.yaml", GOOD_RULE.format(id="r1", severity="high"))
    write(tmp_path / "pack", "sub/b.yml", GOOD_RULE.format(id="r1", severity="low"))
    write(tmp_path / "pack", "c.yaml", GOOD_RULE.format(id="r2", severity="urgent"))
    write(tmp_path / "pack", "notes.txt", "not a rule")
    with pytest.raises(RuleError) as caught:
        load_rules([tmp_path / "pack"], VARIABLES)
    problems = caught.value.problems
    assert len(problems) == 2
    assert any("duplicate id, first defined in" in p and "a.yaml" in p for p in problems)
    assert any("c.yaml: rule 'r2': severity" in p for p in problems)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such file or folder"):
        load_rules([tmp_path / "nope.yaml"], VARIABLES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError, match="no rule files"):
        load_rules([tmp_path / "empty"], VARIABLES)


def test_rules_list_file_and_single_rule_file(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", GOOD_RULE.format(id="single", severity="Medium"))
    write(
        tmp_path,
        "many.yaml",
        "rules:\n"
        + "\n".join(
            f"  - {{id: r{i}, title: t, severity: low, match: {{eventName: E{i}}}}}"
            for i in range(3)
        ),
    )
    rules = load_rules([tmp_path], VARIABLES)
    assert [rule.id for rule in rules] == ["r0", "r1", "r2", "single"]
    assert rules[-1].severity is Severity.MEDIUM


def make_rules(tmp_path: Path, specs: list[str]) -> RuleSet:
    write(tmp_path, "rules.yaml", "rules:\n" + "\n".join(f"  - {s}" for s in specs))
    return RuleSet(load_rules([tmp_path / "rules.yaml"], VARIABLES))


def test_index_dispatch_only_evaluates_candidates(tmp_path: Path) -> None:
    ruleset = make_rules(
        tmp_path,
        [
            "{id: by-name, title: t, severity: high, match: {eventName: CreateUser}}",
            "{id: by-names, title: t, severity: low, match: {eventName: [CreateUser, DeleteUser]}}",
            "{id: by-source, title: t, severity: low, match: {eventSource: iam.amazonaws.com}}",
            "{id: any-names, title: t, severity: low, match: {any: [{eventName: A}, {eventName: B}]}}",  # noqa: E501
            "{id: generic, title: t, severity: info, match: {errorCode: {exists: true}}}",
            "{id: negated, title: t, severity: info, match: {not: {eventName: CreateUser}}}",
            "{id: disabled, title: t, severity: info, enabled: false, match: {eventName: CreateUser}}",  # noqa: E501
        ],
    )
    ids = lambda record: [rule.id for rule in ruleset.candidates(record)]  # noqa: E731
    assert ids({"eventName": "createuser", "eventSource": "iam.amazonaws.com"}) == [
        "by-name",
        "by-names",
        "by-source",
        "generic",
        "negated",
    ]
    assert ids({"eventName": "B"}) == ["any-names", "generic", "negated"]
    assert ids({}) == ["generic", "negated"]
    matched = ruleset.match(Event({"eventName": "CreateUser", "errorCode": "AccessDenied"}))
    assert [rule.id for rule in matched] == ["by-name", "by-names", "generic"]
    assert len(ruleset) == 6


def test_unless_is_an_allow_list(tmp_path: Path) -> None:
    ruleset = make_rules(
        tmp_path,
        ["{id: r, title: t, severity: high, match: {eventName: X}, unless: {principal: ci-bot}}"],
    )
    hit = Event({"eventName": "X", "userIdentity": {"type": "IAMUser", "userName": "alice"}})
    allowed = Event({"eventName": "X", "userIdentity": {"type": "IAMUser", "userName": "ci-bot"}})
    assert [r.id for r in ruleset.match(hit)] == ["r"]
    assert ruleset.match(allowed) == []


def test_explain_says_which_conditions_held() -> None:
    node = parse_expression(
        {"eventName": "CreateUser", "errorCode": {"exists": False}}, "match", VARIABLES
    )
    lines = node.explain(Event({"eventName": "CreateUser", "errorCode": "Denied"})).lines()
    assert lines[0].startswith("✗ all of")
    assert any(line.strip().startswith('✓ eventName equals "CreateUser"') for line in lines)
    assert any(line.strip().startswith("✗ errorCode exists false") for line in lines)


POLICY = (
    '{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},'
    '{"Effect":"Deny","Action":"*","Resource":"*"}]}'
)


def test_where_holds_all_conditions_on_one_element() -> None:
    record = {"requestParameters": {"policyDocument": POLICY}}
    admin = {"Effect": "Allow", "Action": ["*", "*:*"], "Resource": "*"}
    path = "requestParameters.policyDocument.Statement"
    # separately, Allow, * and * are all present, but never in one statement
    assert holds({f"{path}.Effect": "Allow", f"{path}.Action": "*"}, record)
    assert not holds({path: {"where": admin}}, record)
    assert not holds(
        {"requestParameters.policyDocument": {"any_item": {"Statement": {"where": admin}}}}, record
    )  # JSON text is parsed for `where` too
    granted = {"requestParameters": {"policyDocument": POLICY.replace("Deny", "Allow")}}
    assert holds({path: {"where": admin}}, granted)
    # the path may stop at the JSON text itself
    assert holds(
        {"requestParameters.policyDocument": {"where": {"Statement": {"where": admin}}}}, granted
    )
    assert not holds(
        {"requestParameters.policyDocument": {"where": {"Statement": {"where": admin}}}}, record
    )
    assert not holds(
        {"requestParameters.policyDocument": {"where": {"x": 1}}},
        {"requestParameters": {"policyDocument": "{broken"}},
    )


def test_compare_with_another_field() -> None:
    own = {
        "userIdentity": {"type": "IAMUser", "userName": "bob"},
        "requestParameters": {"userName": "bob"},
    }
    other = {
        "userIdentity": {"type": "IAMUser", "userName": "bob"},
        "requestParameters": {"userName": "alice"},
    }
    spec = {"principal": {"not_equals": {"field": "requestParameters.userName"}}}
    assert not holds(spec, own)
    assert holds(spec, other)
    arn_spec = {"userIdentity.arn": {"suffix": {"field": "requestParameters.userName"}}}
    assert holds(
        arn_spec,
        {
            "userIdentity": {"arn": "arn:aws:iam::1:user/Bob"},
            "requestParameters": {"userName": "bob"},
        },
    )
    # nothing to compare with: a positive test fails, a negated one holds
    assert not holds({"principal": {"equals": {"field": "nope"}}}, own)
    assert holds(spec, {"userIdentity": {"type": "IAMUser", "userName": "bob"}})


def test_yaml_keeps_cloudtrail_text_as_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        (
            "id: off\ntitle: t\nseverity: low\n"
            "match: {additionalEventData.MFAUsed: No, geo.country: {in: [NO, SE]}}\n"
            "tests:\n  - {expect: true, geo_country: 'NO', record: "
            "{additionalEventData: {MFAUsed: 'No'}, eventTime: 2026-01-01T00:00:00Z}}\n"
        ),
    )
    (rule,) = load_rules([path], VARIABLES)
    assert rule.id == "off"
    assert rule.tests[0].record["eventTime"] == "2026-01-01T00:00:00Z"
    assert rule.matches(Event(rule.tests[0].record, "NO"))


def test_exists_treats_empty_text_as_absent() -> None:
    assert holds({"accessKeyId": {"exists": False}}, {"accessKeyId": ""})
    assert not holds({"accessKeyId": {"exists": True}}, {"accessKeyId": ""})


def test_uppercase_dollar_text_is_literal() -> None:
    assert holds(
        {"requestParameters.qualifier": "$LATEST"}, {"requestParameters": {"qualifier": "$LATEST"}}
    )


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        ({"a": {"glob": {"field": "b"}}}, "match.a.glob", "cannot compare with another field"),
        ({"a": {"equals": {"field": 3}}}, "match.a.equals.field", "expected a field path"),
        ({"a": {"where": "text"}}, "match.a.where", "expected a mapping"),
        ({"a": {"where": {"b": {"bad": 1}}}}, "match.a.where.b.bad", "unknown operator"),
    ],
)
def test_reference_and_where_errors(spec: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(spec, "match", VARIABLES)
    assert caught.value.where == where
    assert message in caught.value.message


def test_a_field_reference_on_an_indexed_key_is_evaluated(tmp_path: Path) -> None:
    """`eventName: {equals: {field: ...}}` requires no fixed eventName: the rule is generic, not
    filed in the index under a value no event has."""
    ruleset = make_rules(
        tmp_path,
        [
            "{id: same-name, title: t, severity: low,"
            " match: {eventName: {equals: {field: requestParameters.action}}}}",
            "{id: by-name, title: t, severity: low,"
            " match: {all: [{eventName: CreateUser}, {eventSource: {in: {field: x.sources}}}]}}",
        ],
    )
    echoed = {"eventName": "RunInstances", "requestParameters": {"action": "RunInstances"}}
    assert [rule.id for rule in ruleset.match(Event(echoed))] == ["same-name"]
    assert ruleset.match(Event({**echoed, "requestParameters": {"action": "Other"}})) == []
    listed = {"eventName": "CreateUser", "eventSource": "iam", "x": {"sources": ["iam"]}}
    assert [rule.id for rule in ruleset.match(Event(listed))] == ["by-name"]


def test_case_insensitive_equality_skips_only_values_that_cannot_fold_into_the_operand() -> None:
    """casefold never shortens text, so a value longer than the operand is false at once; a
    shorter one that folds longer (ß -> ss) still matches."""
    assert holds({"n": "SS"}, {"n": "ß"})  # len 1 folds to 'ss'
    assert holds({"n": {"in": ["strasse", "x"]}}, {"n": "STRAßE"})
    assert not holds({"n": "trufflehog"}, {"n": "TruffleHog/3.63 " + "x" * 200})
    assert holds({"n": "trufflehog"}, {"n": "TRUFFLEHOG"})
    assert holds({"n": {"not_equals": "abc"}}, {"n": "abcd"})
    assert holds({"n": "12"}, {"n": 12}) and not holds({"n": "1"}, {"n": 12})


def test_a_global_regex_flag_works_alone_and_is_refused_in_a_list_naming_the_key() -> None:
    alone = parse_expression({"userAgent": {"regex": "(?i)^BOTO"}}, "match", {})
    assert alone.compile()(Event({"userAgent": "boto3/1.34"})) is True
    with pytest.raises(ExpressionError, match=r"match\.userAgent\.regex: .*cannot be combined"):
        parse_expression({"userAgent": {"regex": ["(?i)a", "b"]}}, "match", {})

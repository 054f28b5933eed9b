"""Derived fields and safe access on every identity shape CloudTrail writes."""

from __future__ import annotations

from typing import Any

import pytest

from umbrellabot.model.records import Event, account_of, get_str, principal_of, values_at


@pytest.mark.parametrize(
    ("identity", "principal"),
    [
        ({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}, "root"),
        ({"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"}, "alice"),
        (
            {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/Deploy/i-0abc"},
            "Deploy/i-0abc",
        ),
        (
            {
                "type": "AssumedRole",
                "principalId": "AROA:bob",
                "sessionContext": {"sessionIssuer": {"userName": "Dev"}},
            },
            "Dev",
        ),
        ({"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/carol"}, "carol"),
        (
            {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
            "cloudtrail.amazonaws.com",
        ),
        ({"type": "AWSAccount", "accountId": "444455556666"}, "account 444455556666"),
        ({"type": "IdentityCenterUser", "principalId": "idc-123"}, "idc-123"),
        ({"type": "Unknown", "arn": "arn:aws:iam::1:user/x"}, "user/x"),
        ({"type": "Unknown"}, None),
    ],
)
def test_principal(identity: dict[str, Any], principal: str | None) -> None:
    assert principal_of({"userIdentity": identity}) == principal


def test_principal_without_identity() -> None:
    assert principal_of({"sourceIPAddress": "ec2.amazonaws.com"}) == "ec2.amazonaws.com"
    assert principal_of({"sourceIPAddress": "1.2.3.4"}) is None
    assert principal_of({"userIdentity": "weird"}) is None


def test_account() -> None:
    assert account_of({"recipientAccountId": "1", "userIdentity": {"accountId": "2"}}) == "1"
    assert account_of({"userIdentity": {"accountId": "2"}}) == "2"
    assert account_of({}) is None


def test_safe_get_and_paths_never_raise() -> None:
    record = {"a": {"b": [1, {"c": "x"}, None]}, "s": "[1, 2", "n": None}
    assert get_str(record, "a", "b", "c") is None
    assert values_at(Event(record), ("a", "b", "c")) == ["x"]
    assert values_at(Event(record), ("a", "b")) == [1, {"c": "x"}]
    assert values_at(Event(record), ("s", "x")) == []  # broken JSON text: nothing reached
    assert values_at(Event(record), ("n", "x")) == []

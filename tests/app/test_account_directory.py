"""ACCOUNT_NAMES_FROM_ORGANIZATIONS: account names from AWS Organizations' ListAccounts (moto),
read at the first cycle and refreshed daily, under the explicit ACCOUNT_NAMES; a refusal keeps
the names known with one warning."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import boto3
import pytest
from faults.fault_proxy import started

from umbrellabot.app.account_names import REFRESH_S, AccountDirectory
from umbrellabot.config import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, aws_region="us-east-1", **values)  # type: ignore[call-arg]


async def test_names_come_from_the_organization_under_account_names(
    aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("organizations", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    with contextlib.suppress(client.exceptions.AlreadyInOrganizationException):
        client.create_organization(FeatureSet="ALL")
    created = client.create_account(Email="payments@example.com", AccountName="prod-payments")
    new_id = created["CreateAccountStatus"]["AccountId"]
    directory = AccountDirectory(
        settings(account_names_from_organizations=True, account_names="111111111111=mine")
    )
    assert await directory.refresh(now=1000.0) is True
    assert directory[new_id] == "prod-payments"
    assert directory["111111111111"] == "mine"  # the explicit map wins
    client.create_account(Email="dev@example.com", AccountName="dev")
    assert await directory.refresh(now=1000.0 + 60) is False  # once a day
    assert "dev" not in directory.values()
    assert await directory.refresh(now=1000.0 + REFRESH_S) is True
    assert "dev" in directory.values()


async def test_off_by_default_and_a_refusal_is_one_warning(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    off = AccountDirectory(settings(account_names="111111111111=mine"))
    assert await off.refresh() is False and dict(off) == {"111111111111": "mine"}
    proxy = await started(
        aws_env["AWS_ENDPOINT_URL"], seed=1, rates={"ListAccounts": {"denied": 1.0}}
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # not the management account
    directory = AccountDirectory(
        settings(account_names_from_organizations=True, account_names="111111111111=mine")
    )
    try:
        with caplog.at_level(logging.WARNING):
            assert await directory.refresh(now=5.0) is False
    finally:
        await proxy.stop()
    [line] = [r.getMessage() for r in caplog.records if "account names" in r.getMessage()]
    assert "organizations:ListAccounts" in line and "ACCOUNT_NAMES" in line
    assert dict(directory) == {"111111111111": "mine"}

"""Account names from AWS Organizations (`ListAccounts`, with the default credentials: from the
management account or a delegated administrator), for ACCOUNT_NAMES_FROM_ORGANIZATIONS.
One sentence for what no retry fixes, like the other AWS adapters."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from umbrellabot.errors import one_line
from umbrellabot.storage.aws import aws_session, client_config


class OrganizationsError(Exception):
    """Organizations could not list the accounts; str() is one line."""


async def organization_accounts(*, region: str | None, max_attempts: int) -> dict[str, str]:
    """Account ID -> name of every account of the organization."""
    names: dict[str, str] = {}
    config = client_config(1, max_attempts)
    try:
        async with aws_session().client(
            "organizations", region_name=region, config=config
        ) as client:

            async def _call(operation: str, **params: Any) -> Any:
                return await getattr(client, operation)(**params)

            token: dict[str, str] = {}
            while True:
                page = await _call("list_accounts", **token)
                for account in page.get("Accounts") or []:
                    if account.get("Id") and account.get("Name"):
                        names[str(account["Id"])] = str(account["Name"])
                if not page.get("NextToken"):
                    return names
                token = {"NextToken": str(page["NextToken"])}
    except ClientError as err:
        error = err.response.get("Error", {})
        raise OrganizationsError(
            f"organizations:ListAccounts: {error.get('Code', 'Unknown')}:"
            f" {one_line(str(error.get('Message', '')))} (it works from the management account"
            " or a delegated administrator; or set ACCOUNT_NAMES)"
        ) from None
    except BotoCoreError as err:
        raise OrganizationsError(f"organizations:ListAccounts: {one_line(str(err))}") from None

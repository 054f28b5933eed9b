"""Account names for people: "prod-payments (111122223333)" instead of twelve digits. The
names come from the settings (ACCOUNT_NAMES) and are trusted; the ID comes from the log."""

from __future__ import annotations

import re
from collections.abc import Mapping

_ACCOUNT = re.compile(r"^\d{12}$")
_NAME = re.compile(r"^[\w .@+=,:/()-]{1,64}$")

AccountNames = Mapping[str, str]
NO_NAMES: AccountNames = {}


def account_label(account: str | None, names: AccountNames = NO_NAMES) -> str | None:
    """`name (id)` when the account has a name, else the id (None stays None)."""
    if account is None:
        return None
    name = names.get(account)
    return f"{name} ({account})" if name else account


def parse_account_names(text: str) -> dict[str, str]:
    """`111122223333=prod-payments,444455556666=dev`; raises ValueError naming the entry."""
    names: dict[str, str] = {}
    for entry in (item.strip() for item in re.split(r"[,\n]", text)):
        if not entry:
            continue
        account, _, name = entry.partition("=")
        account, name = account.strip(), name.strip()
        if not _ACCOUNT.match(account) or not _NAME.match(name):
            raise ValueError(
                f"expected ACCOUNT_ID=name pairs such as 111122223333=prod-payments; got {entry!r}"
            )
        names[account] = name
    return names

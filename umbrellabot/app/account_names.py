"""The account names the process shows: ACCOUNT_NAMES, over the names AWS Organizations gives
when ACCOUNT_NAMES_FROM_ORGANIZATIONS (read at start and refreshed daily; a failure keeps the
names known and is one warning). One dict, shared by the notifier and the bot, updated in place."""

from __future__ import annotations

import logging
import time

from umbrellabot.config import Settings
from umbrellabot.storage.organizations import OrganizationsError, organization_accounts

log = logging.getLogger(__name__)
REFRESH_S = 86400.0


class AccountDirectory(dict[str, str]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.account_names)
        self._settings = settings
        self.refreshed_at: float | None = None

    async def refresh(self, now: float | None = None) -> bool:
        """Read Organizations when due (and allowed); True when the names were read."""
        settings, moment = self._settings, time.time() if now is None else now
        if not settings.account_names_from_organizations:
            return False
        if self.refreshed_at is not None and moment - self.refreshed_at < REFRESH_S:
            return False
        self.refreshed_at = moment  # a failure is tried again the next day, not every cycle
        try:
            found = await organization_accounts(
                region=settings.aws_region, max_attempts=settings.s3_max_attempts
            )
        except OrganizationsError as err:
            log.warning("account names: %s", err)
            return False
        self.update({**found, **settings.account_names})  # the explicit map wins
        log.info("account names: %d accounts from AWS Organizations", len(found))
        return True

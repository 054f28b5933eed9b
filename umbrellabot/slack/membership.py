"""The part of the bot's door that asks Slack: a guest (a multi- or single-channel guest,
`is_restricted` / `is_ultra_restricted` in `users.info`) is refused unless ALLOW_GUESTS, and
with ALLOWED_USERGROUPS only members of those user groups (`usergroups.users.list`) get an
answer. Both are cached (CACHE_S), so a busy channel costs Slack a call now and then; when Slack
cannot say, the person is refused (a door that opens when the lock breaks is no door)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
CACHE_S = 600.0


class Membership:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        allow_guests: bool = False,
        usergroups: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._allow_guests = allow_guests
        self._usergroups = usergroups
        self._clock = clock
        self._guests: dict[str, tuple[float, bool]] = {}
        self._members: tuple[float, frozenset[str]] | None = None

    async def refusal(self, user: str) -> str | None:
        """ "guest", "usergroup" or "unverified" when this person may not use the bot; None."""
        if not self._allow_guests:
            guest = await self._is_guest(user)
            if guest is None:
                return "unverified"
            if guest:
                return "guest"
        if self._usergroups:
            members = await self._group_members()
            if members is None:
                return "unverified"
            if user not in members:
                return "usergroup"
        return None

    async def _is_guest(self, user: str) -> bool | None:
        now = self._clock()
        known = self._guests.get(user)
        if known is not None and now - known[0] < CACHE_S:
            return known[1]
        try:
            answer = await self._client.users_info(user=user)
        except (SlackApiError, SlackClientError) as err:
            log.warning("users.info of %s failed: %s; refused until Slack answers", user, err)
            return None
        found = answer.get("user") or {}
        guest = bool(found.get("is_restricted") or found.get("is_ultra_restricted"))
        self._guests[user] = (now, guest)
        return guest

    async def _group_members(self) -> frozenset[str] | None:
        now = self._clock()
        if self._members is not None and now - self._members[0] < CACHE_S:
            return self._members[1]
        members: set[str] = set()
        try:
            for group in sorted(self._usergroups):
                answer = await self._client.usergroups_users_list(usergroup=group)
                members |= {str(user) for user in answer.get("users") or []}
        except (SlackApiError, SlackClientError) as err:
            log.warning("usergroups.users.list failed: %s; the last members stand", err)
            return self._members[1] if self._members is not None else None
        self._members = (now, frozenset(members))
        return self._members[1]

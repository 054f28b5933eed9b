"""Which Slack events get an answer, and which a refusal. Pure.

- Messages from bots (any `bot_id`, `bot_message`, `bot_profile`, or our own user) are ignored,
  so two bots can never talk to each other in a loop.
- A redelivered event (same channel and ts) is answered once.
- ALLOWED_CHANNELS and ALLOWED_USERS (each optional, empty: anywhere/anyone): a person outside
  them gets one short, polite refusal that names no event, rather than silence (which looks like
  a broken bot); a DM counts as a channel.
- A person of another workspace (Slack Connect: the event's `user_team`/`source_team`, an
  action's `user.team_id`, other than the team that installed the app) is refused unless
  ALLOW_EXTERNAL_USERS. The same door stands before the buttons on alerts (`may_act`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEEN_MENTIONS = 2000  # (channel, ts) remembered so that a redelivered event is answered once


@dataclass(frozen=True)
class Verdict:
    """What to do with one event: nothing (`answer` False and no `refusal`), refuse with
    `refusal` ("channel" or "user"), or answer in `channel`, in the `thread`."""

    answer: bool
    channel: str = ""
    thread: str | None = None
    user: str = ""
    refusal: str | None = None


IGNORE = Verdict(answer=False)


class MentionGate:
    def __init__(
        self,
        allowed_channels: frozenset[str],
        allowed_users: frozenset[str],
        *,
        allow_external: bool = False,
    ) -> None:
        self._allowed_channels = allowed_channels
        self._allowed_users = allowed_users
        self._allow_external = allow_external
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.bot_user_id: str | None = None  # known once connected (auth.test)
        self.home_team: str | None = None  # the workspace that installed the app (auth.test)

    def refusal(self, user: str, channel: str, teams: tuple[str, ...]) -> str | None:
        """Why this person may not use the bot here ("channel", "user", "external"), or None."""
        home = self.home_team
        if not self._allow_external and home and any(t and t != home for t in teams):
            return "external"
        if self._allowed_channels and channel not in self._allowed_channels:
            return "channel"
        if self._allowed_users and user not in self._allowed_users:
            return "user"
        return None

    def may_act(self, action: Mapping[str, Any]) -> tuple[str, str, str | None]:
        """(user, channel, refusal) of a `block_actions` payload."""
        who = action.get("user") or {}
        user = str(who.get("id") or "")
        channel = str((action.get("channel") or {}).get("id") or "")
        if not channel:
            channel = str((action.get("container") or {}).get("channel_id") or "")
        team = str(who.get("team_id") or (action.get("team") or {}).get("id") or "")
        return user, channel, self.refusal(user, channel, (team,))

    def verdict(self, event: Mapping[str, Any]) -> Verdict:
        if self._from_a_bot(event):
            return IGNORE
        channel = str(event.get("channel") or "")
        ts = str(event.get("ts") or "")
        if not channel or not self._first_time(channel, ts):
            return IGNORE
        thread = str(event.get("thread_ts") or ts) or None
        user = str(event.get("user") or "")
        teams = (str(event.get("user_team") or ""), str(event.get("source_team") or ""))
        refusal = self.refusal(user, channel, teams)
        if refusal is not None:
            return Verdict(False, channel, thread, user, refusal=refusal)
        return Verdict(True, channel, thread, user)

    def _from_a_bot(self, event: Mapping[str, Any]) -> bool:
        return bool(
            event.get("bot_id")
            or event.get("subtype") == "bot_message"
            or event.get("bot_profile")
            or (self.bot_user_id is not None and event.get("user") == self.bot_user_id)
        )

    def _first_time(self, channel: str, ts: str) -> bool:
        key = (channel, ts)
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > SEEN_MENTIONS:
            self._seen.popitem(last=False)
        return True

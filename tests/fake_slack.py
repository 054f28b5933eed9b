"""A fake Slack on 127.0.0.1 for tests, driven by the real slack_sdk / slack_bolt clients.

Web API (`/api/<method>`): auth.test, apps.connections.open, chat.postMessage, chat.update,
chat.postEphemeral, views.publish, users.info, usergroups.users.list,
files.getUploadURLExternal, the upload URL itself and files.completeUploadExternal, plus
conversations.info, .list, .history and .replies (message metadata kept as posted, returned
with include_all_metadata). Socket Mode (`/link`): `hello` on connect, `events_api` envelopes
and `interactive` envelopes (`block_actions`: a button pressed on a posted message) pushed by
the test and the client's acks, ping/pong (aiohttp answers pings; the fake can ping
too), and a `disconnect` message. Failure modes for tests: an outage (HTTP 503 for every Web
API call), HTTP 429 with Retry-After for the next N calls, posts accepted whose answer is lost
(HTTP 500 after the message is kept), and an invalid token.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
BOT_USER = "UBOT000001"
BOT_ID = "BBOT000001"
TEAM = "T00000001"
APP = "A00000001"


@dataclass
class Call:
    method: str
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    token: str | None = None


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    updates: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.posted: list[Posted] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.acked_at: dict[str, int] = {}  # envelope -> how many Web API calls came before
        self.ephemeral: list[dict[str, Any]] = []  # chat.postEphemeral calls
        self.views: list[dict[str, Any]] = []  # views.publish calls (the App Home)
        self.guests: set[str] = set()  # users.info says is_restricted for these
        self.usergroups: dict[str, set[str]] = {}  # usergroups.users.list
        self.outage = False
        self.rate_limited_calls = 0  # the next N Web API calls get HTTP 429
        self.accepted_then_lost = 0  # the next N posts are kept, but answered HTTP 500
        self.retry_after_s = 1
        self.connections = 0
        self.pongs: list[bytes] = []  # PONG payloads the client sent (answers to ping_client)
        self.base_url = ""
        self._sockets: list[web.WebSocketResponse] = []
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._ts = itertools.count(1)
        self._turn = itertools.count()  # which connection the next event goes to
        self._runner: web.AppRunner | None = None

    # lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads some with GET
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL / slack_sdk's base_url should be."""
        return f"{self.base_url}/api/"

    # Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        data = await self._payload(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else data.get("token")
        self.calls.append(Call(method, data, token=token))
        self._notify()
        if self.outage:
            return web.Response(status=503, text="Service Unavailable")
        if self.rate_limited_calls > 0:
            self.rate_limited_calls -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after_s)},
            )
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(data)
        if method == "chat.postMessage" and self.accepted_then_lost > 0:
            self.accepted_then_lost -= 1  # Slack took it; the answer never arrives
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response(result)

    @staticmethod
    async def _payload(request: web.Request) -> dict[str, Any]:
        # slack_sdk sends some methods' arguments in the query string (files.*UploadExternal)
        query: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            return {**query, **body} if isinstance(body, dict) else query
        form = await request.post()
        data: dict[str, Any] = query
        for key, value in form.items():
            text = str(value)
            if key in ("blocks", "attachments", "files", "metadata"):
                try:
                    data[key] = json.loads(text)
                    continue
                except ValueError:
                    pass
            data[key] = text
        return data

    def _m_auth_test(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://example.slack.com/",
            "team": "Test",
            "user": "bot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    def _m_apps_connections_open(self, data: dict[str, Any]) -> dict[str, Any]:
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/link?ticket={uuid.uuid4()}"}

    def _m_chat_postMessage(self, data: dict[str, Any]) -> dict[str, Any]:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        channel = str(data.get("channel", ""))
        metadata = data.get("metadata")
        self.posted.append(
            Posted(
                channel,
                ts,
                str(data.get("text", "")),
                data.get("blocks"),
                data.get("thread_ts"),
                metadata=metadata if isinstance(metadata, dict) else None,
            )
        )
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"text": data.get("text", ""), "ts": ts, "bot_id": BOT_ID},
        }

    def _m_chat_update(self, data: dict[str, Any]) -> dict[str, Any]:
        for message in self.posted:
            if message.ts == data.get("ts") and message.channel == data.get("channel"):
                message.updates.append(data)
                message.text = str(data.get("text", message.text))
                message.blocks = data.get("blocks", message.blocks)
                return {"ok": True, "channel": message.channel, "ts": message.ts}
        return {"ok": False, "error": "message_not_found"}

    def _m_users_info(self, data: dict[str, Any]) -> dict[str, Any]:
        user = str(data.get("user", ""))
        guest = user in self.guests
        return {
            "ok": True,
            "user": {"id": user, "team_id": TEAM, "is_restricted": guest, "is_bot": False},
        }

    def _m_usergroups_users_list(self, data: dict[str, Any]) -> dict[str, Any]:
        group = str(data.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": sorted(self.usergroups[group])}

    def _m_views_publish(self, data: dict[str, Any]) -> dict[str, Any]:
        view = data.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        self.views.append({"user_id": data.get("user_id"), "view": view})
        return {"ok": True, "view": {"id": f"V{len(self.views):08d}", **(view or {})}}

    def _m_chat_postEphemeral(self, data: dict[str, Any]) -> dict[str, Any]:
        self.ephemeral.append(data)
        return {"ok": True, "message_ts": f"{time.time():.6f}"}

    def _message(self, posted: Posted, with_metadata: bool) -> dict[str, Any]:
        found: dict[str, Any] = {"type": "message", "ts": posted.ts, "text": posted.text}
        found.update(bot_id=BOT_ID, user=BOT_USER)
        if posted.thread_ts:
            found["thread_ts"] = posted.thread_ts
        if with_metadata and posted.metadata:
            found["metadata"] = posted.metadata
        return found

    def _m_conversations_list(self, data: dict[str, Any]) -> dict[str, Any]:
        """The channels posted to so far (a name posted to is its own ID here)."""
        channels = dict.fromkeys(m.channel for m in self.posted)
        found = [{"id": channel, "name": channel.lstrip("#")} for channel in channels]
        return {"ok": True, "channels": found, "response_metadata": {"next_cursor": ""}}

    def _m_conversations_history(self, data: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first (metadata with include_all_metadata)."""
        oldest = float(data.get("oldest") or 0)
        full = str(data.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            self._message(m, full)
            for m in reversed(self.posted)
            if m.channel == data.get("channel") and not m.thread_ts and float(m.ts) >= oldest
        ]
        return {"ok": True, "messages": found[: int(data.get("limit") or 100)], "has_more": False}

    def _m_conversations_replies(self, data: dict[str, Any]) -> dict[str, Any]:
        """The thread of `ts`: its parent first, then the replies, oldest first."""
        full = str(data.get("include_all_metadata", "")).lower() in ("1", "true")
        thread = [
            self._message(m, full)
            for m in self.posted
            if m.channel == data.get("channel") and data.get("ts") in (m.ts, m.thread_ts)
        ]
        return {"ok": True, "messages": thread, "has_more": False}

    def _m_conversations_info(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": data.get("channel"), "name": "alerts"}}

    def _m_files_getUploadURLExternal(self, data: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        self.uploads[file_id] = {
            "filename": data.get("filename"),
            "length": data.get("length"),
            "content": None,
            "completed": False,
        }
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404)
        self.uploads[file_id]["content"] = await request.read()
        self._notify()
        return web.Response(text=f"OK - {len(self.uploads[file_id]['content'])}")

    def _m_files_completeUploadExternal(self, data: dict[str, Any]) -> dict[str, Any]:
        files = data.get("files")
        listed = json.loads(files) if isinstance(files, str) else files or []
        done = []
        for item in listed:
            upload = self.uploads.get(item.get("id"))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            upload.update(
                completed=True,
                title=item.get("title"),
                channel=data.get("channel_id"),
                thread_ts=data.get("thread_ts"),
                comment=data.get("initial_comment"),
            )
            done.append({"id": item.get("id"), "title": item.get("title")})
        return {"ok": True, "files": done}

    # Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        # PING answered here rather than by aiohttp's autoping, so that PONGs can be recorded
        socket = web.WebSocketResponse(autoping=False)
        await socket.prepare(request)
        self.connections += 1
        self._sockets.append(socket)
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-slack"},
                "connection_info": {"app_id": APP},
            }
        )
        self._notify()
        try:
            async for message in socket:
                if message.type == WSMsgType.PING:
                    await socket.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    self.pongs.append(bytes(message.data))
                    self._notify()
                elif message.type == WSMsgType.TEXT:
                    ack = json.loads(message.data)
                    envelope = ack.get("envelope_id")
                    if envelope:
                        self.acks[envelope] = ack
                        self.acked_at[envelope] = len(self.calls)
                        waiter = self._ack_waiters.pop(envelope, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(ack)
                    self._notify()
        finally:
            self._sockets.remove(socket)
        return socket

    async def wait_connected(self, timeout: float = 10) -> None:
        await self.wait_for(lambda: bool(self._sockets), timeout)

    async def send_event(
        self,
        event: dict[str, Any],
        timeout: float = 5,
        *,
        retry_attempt: int = 0,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Push one events_api envelope, on the connections in turn as Slack spreads them;
        returns the client's ack. A retry (`retry_attempt` > 0, the same `event_id`) is what
        Slack sends when it thinks an earlier delivery was not acknowledged in time."""
        await self.wait_connected()
        envelope_id = str(uuid.uuid4())
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[envelope_id] = waiter
        socket = self._sockets[next(self._turn) % len(self._sockets)]
        await socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
                "payload": {
                    "token": "verification",
                    "team_id": TEAM,
                    "api_app_id": APP,
                    "event": event,
                    "type": "event_callback",
                    "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
                    "event_time": int(time.time()),
                    "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
                },
            }
        )
        return await asyncio.wait_for(waiter, timeout)

    async def send_action(
        self,
        message: Posted,
        action: dict[str, Any],
        *,
        user: str = "UALICE001",
        team: str = TEAM,
        timeout: float = 5,
    ) -> str:
        """Press a button (or pick an option) on a posted message: one `interactive` envelope
        with a `block_actions` payload, as Socket Mode sends it; returns the envelope id once the
        client acknowledged it (`acked_at` says how many Web API calls came before the ack)."""
        await self.wait_connected()
        envelope_id = str(uuid.uuid4())
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[envelope_id] = waiter
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
            "api_app_id": APP,
            "token": "verification",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{int(time.time())}.trigger",
            "team": {"id": team, "domain": "example"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": "security"},
            "message": {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "blocks": message.blocks or [],
                "bot_id": BOT_ID,
            },
            "state": {"values": {}},
            "response_url": f"{self.base_url}/actions/response",
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        }
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": "interactive",
                "accepts_response_payload": False,
                "payload": payload,
            }
        )
        await asyncio.wait_for(waiter, timeout)
        return envelope_id

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        await self.wait_connected()
        await self._sockets[-1].send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        )

    async def ping_client(self, payload: bytes = b"fake-ping") -> None:
        await self.wait_connected()
        await self._sockets[-1].ping(payload)

    async def ping_and_wait_pong(self, payload: bytes = b"fake-ping", timeout: float = 5) -> None:
        """Ping the client and wait for its PONG carrying the same payload."""
        await self.ping_client(payload)
        await self.wait_for(lambda: payload in self.pongs, timeout)

    # waiting

    def _notify(self) -> None:
        self._changed.set()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("fake Slack: condition not met in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[Posted]:
        return [m for m in self.posted if m.channel == channel and m.thread_ts == thread_ts]

    def replies_to(self, thread_ts: str) -> list[Posted]:
        return [m for m in self.posted if m.thread_ts == thread_ts]


def mention(
    text: str,
    *,
    user: str = "UALICE001",
    channel: str = "CSEC00001",
    ts: str | None = None,
    bot_id: str | None = None,
) -> dict[str, Any]:
    """An app_mention event as Slack sends it."""
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "channel": channel,
        "ts": ts or f"{time.time():.6f}",
        "event_ts": f"{time.time():.6f}",
        "team": TEAM,
    }
    if bot_id:
        event["bot_id"] = bot_id
    return event

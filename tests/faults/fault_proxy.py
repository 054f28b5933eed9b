"""An HTTP proxy in front of moto's server that fails the way S3 fails, in a seeded mix.

- `slowdown`: 503 with S3's own SlowDown error document (botocore retries it);
- `reset`: the connection closed before any response (botocore retries it);
- `cut`: a GetObject answered 200 with the whole Content-Length but only part of the body,
  then the connection closed (no client retries a body it already started to read);
- `kms`: 403 with the AccessDenied error S3 returns when the caller may not use the bucket's
  KMS key;
- `denied`: 403 AccessDenied, as S3 answers what the IAM or bucket policy does not allow; for a
  JSON-protocol service (Glue: the operation is the `X-Amz-Target` header's), 400
  AccessDeniedException, as those answer it.

`applies(operation, key)` narrows the faults to some keys (for a listing: its prefix).

Faults are drawn per request from `random.Random(seed)` over the operations `rates` names, so a
run is repeatable; `injected` counts what was done, so a test can show that faults happened.
Everything else is passed through unchanged (moto does not check signatures, so the Host
header the client signed may stay).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>"
)
KMS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>User: arn:aws:sts::111122223333:assumed-role/umbrellabot/i-0abc is not"
    b" authorized to perform: kms:Decrypt on resource:"
    b" arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab because no"
    b" resource-based policy allows the kms:Decrypt action</Message>"
    b"<RequestId>FAULT</RequestId></Error>"
)
DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>FAULT</RequestId></Error>"
)
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

Rates = Mapping[str, Mapping[str, float]]  # operation -> fault -> probability
Selector = Callable[[str, str], bool]  # (operation, key) -> whether faults apply


JSON_DENIED = (
    b'{"__type": "AccessDeniedException", "Message": "User: arn:aws:sts::123456789012:'
    b"assumed-role/umbrellabot/i-0abc is not authorized to perform: glue:GetTables on resource:"
    b" arn:aws:glue:us-east-1:123456789012:catalog because no identity-based policy allows the"
    b' glue:GetTables action"}'
)


def operation_of(request: web.Request) -> tuple[str, str]:
    """(operation, object key) of a JSON-protocol request (by its target) or of a path-style
    S3 request."""
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.rpartition(".")[2], ""
    _, _, rest = request.path.lstrip("/").partition("/")
    if request.method == "GET" and not rest:
        if "list-type" in request.query:
            return "ListObjectsV2", request.query.get("prefix", "")
        return "GetBucket", ""
    names = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "Delete"}
    return names.get(request.method, request.method), rest


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        rates: Rates,
        applies: Selector | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rates = {op: dict(faults) for op, faults in rates.items()}
        self.applies = applies or (lambda operation, key: True)
        self.random = random.Random(seed)
        self.injected: Counter[tuple[str, str]] = Counter()  # (fault, operation)
        self.passed: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def total(self, fault: str) -> int:
        return sum(count for (kind, _), count in self.injected.items() if kind == fault)

    def _draw(self, operation: str, key: str) -> str | None:
        faults = self.rates.get(operation)
        if not faults or not self.applies(operation, key):
            return None
        roll = self.random.random()
        for fault, rate in faults.items():
            if roll < rate:
                return fault
            roll -= rate
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation, key = operation_of(request)
        fault = self._draw(operation, key)
        body = await request.read()
        if fault is not None:
            self.injected[(fault, operation)] += 1
        if fault == "slowdown":
            return web.Response(status=503, body=SLOWDOWN, content_type="application/xml")
        if fault == "kms":
            return web.Response(status=403, body=KMS_DENIED, content_type="application/xml")
        if fault == "denied" and "X-Amz-Target" in request.headers:
            return web.Response(
                status=400, body=JSON_DENIED, content_type="application/x-amz-json-1.1"
            )
        if fault == "denied":
            return web.Response(status=403, body=DENIED, content_type="application/xml")
        if fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never sent: the connection is gone
        status, headers, payload = await self._forward(request, body)
        if fault == "cut" and status == 200 and len(payload) > 1:
            return await self._cut_short(request, headers, payload)
        self.passed[operation] += 1
        return web.Response(status=status, headers=headers, body=payload)

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as response:
            payload = await response.read()
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
            return response.status, kept, payload

    async def _cut_short(
        self, request: web.Request, headers: dict[str, str], payload: bytes
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=headers)
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        await asyncio.sleep(0.01)  # the first half reaches the client before the close
        assert request.transport is not None
        request.transport.abort()
        return response


async def started(upstream: str, **options: Any) -> FaultProxy:
    proxy = FaultProxy(upstream, **options)
    await proxy.start()
    return proxy

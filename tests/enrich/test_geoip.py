"""Geo-IP: the offline database, and ipstack through a fake ipstack server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from umbrellabot.enrich.geoip import IpstackGeo, OfflineGeo, is_public_ip


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),
        ("2001:4860:4860::8888", "US"),
        ("10.0.0.1", None),
        ("192.168.1.20", None),
        ("127.0.0.1", None),
        ("100.64.0.1", None),  # carrier-grade NAT
        ("::1", None),
        ("fd00::1", None),
        ("AWS Internal", None),
        ("ec2.amazonaws.com", None),
        ("253.252.51.07", None),  # anonymised with a leading zero: not an address
        ("", None),
        (None, None),
    ],
)
def test_offline_country(address: str | None, country: str | None) -> None:
    assert OfflineGeo().country(address) == country


def test_is_public_ip() -> None:
    assert is_public_ip("1.1.1.1")
    assert not is_public_ip("169.254.169.254")
    assert not is_public_ip("not an ip")


@dataclass
class FakeIpstack:
    answers: dict[str, object]
    status: int = 200
    requests: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        self.requests.append(address)
        self.keys.append(request.query.get("access_key", ""))
        if self.status != 200:
            return web.Response(status=self.status, text="upstream trouble")
        return web.json_response(self.answers.get(address, {"country_code": None}))


@pytest.fixture
async def fake_ipstack() -> AsyncIterator[tuple[FakeIpstack, str]]:
    fake = FakeIpstack(answers={})
    app = web.Application()
    app.router.add_get("/{address}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_ipstack_is_asked_once_per_address(fake_ipstack: tuple[FakeIpstack, str]) -> None:
    fake, url = fake_ipstack
    fake.answers = {"8.8.8.8": {"country_code": "FR"}, "81.2.69.142": {"country_code": "gb"}}
    geo = IpstackGeo("KEY123", base_url=url)
    await geo.prefetch(["8.8.8.8", "81.2.69.142", "8.8.8.8", "10.0.0.1", "AWS Internal"])
    await geo.prefetch(["8.8.8.8"])  # cached: no second call
    assert sorted(fake.requests) == ["8.8.8.8", "81.2.69.142"]
    assert set(fake.keys) == {"KEY123"}
    assert geo.country("8.8.8.8") == "FR"  # ipstack's answer, not the database's
    assert geo.country("81.2.69.142") == "GB"
    assert geo.country("10.0.0.1") is None
    assert geo.stats.calls == 2


async def test_ipstack_cap_then_offline(fake_ipstack: tuple[FakeIpstack, str]) -> None:
    fake, url = fake_ipstack
    fake.answers = {"8.8.8.8": {"country_code": "FR"}, "1.1.1.1": {"country_code": "FR"}}
    geo = IpstackGeo("KEY", base_url=url, max_calls=1)
    await geo.prefetch(["1.1.1.1", "8.8.8.8"])
    assert len(fake.requests) == 1
    asked = fake.requests[0]
    other = "8.8.8.8" if asked == "1.1.1.1" else "1.1.1.1"
    assert geo.country(asked) == "FR"
    assert geo.country(other) == OfflineGeo().country(other)
    assert geo.stats.fallbacks == 1


async def test_ipstack_failures_fall_back(fake_ipstack: tuple[FakeIpstack, str]) -> None:
    fake, url = fake_ipstack
    fake.status = 500
    geo = IpstackGeo("KEY", base_url=url)
    await geo.prefetch(["8.8.8.8"])
    assert geo.country("8.8.8.8") == "US"
    assert geo.stats.failures == 1


async def test_ipstack_spent_quota_stops_asking(fake_ipstack: tuple[FakeIpstack, str]) -> None:
    fake, url = fake_ipstack
    quota = {"success": False, "error": {"code": 104, "type": "usage_limit_reached"}}
    fake.answers = {"8.8.8.8": quota, "1.1.1.1": quota, "81.2.69.142": quota}
    geo = IpstackGeo("KEY", base_url=url, concurrency=1)
    await geo.prefetch(["8.8.8.8", "1.1.1.1", "81.2.69.142"])
    await geo.prefetch(["9.9.9.9"])
    assert len(fake.requests) == 1
    assert geo.country("81.2.69.142") == "GB"


async def test_ipstack_unreachable_falls_back() -> None:
    geo = IpstackGeo("KEY", base_url="http://127.0.0.1:9", timeout_s=2)
    await geo.prefetch(["8.8.8.8"])
    assert geo.country("8.8.8.8") == "US"
    assert geo.stats.failures == 1

"""Issue #11: the rate limiter's memory is bounded without forgetting throttled clients, so spraying
source addresses never resets a throttled client's bucket."""

from __future__ import annotations

import http.client
from types import SimpleNamespace

import pytest
from support.servers import ServerFactory
from webhookfast.errors import HTTPError
from webhookfast.http import Context
from webhookfast.middleware.rate_limit import RateLimit, client_key


def drain(rl: RateLimit, client: str, now: float) -> None:
    while rl.allow(client, now) == 0:
        pass


def test_spraying_addresses_does_not_reset_a_throttled_client() -> None:
    rl = RateLimit(1.0, 5)  # the default table: 10,000 clients
    drain(rl, "203.0.113.7", 1000.0)
    assert rl.allow("203.0.113.7", 1000.0) > 0
    for i in range(20_000):  # twice the table's size
        rl.allow(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 1000.0 + i * 1e-6)
    assert len(rl._buckets) <= 10_000
    assert rl.allow("203.0.113.7", 1000.1) > 0


def test_only_refilled_buckets_are_evicted_oldest_first() -> None:
    rl = RateLimit(1.0, 2, max_clients=3)
    for client, t in (("a", 0.0), ("b", 0.5), ("c", 1.0)):
        assert rl.allow(client, t) == 0  # one token left each
    # At 1.2 s, a has refilled (1 + 1.2 tokens), b (1 + 0.7) and c have not: a goes, d comes in.
    assert rl.allow("d", 1.2) == 0
    assert list(rl._buckets) == ["b", "c", "d"]


def test_a_new_client_waits_while_every_bucket_refills() -> None:
    rl = RateLimit(1.0, 2, max_clients=2)
    assert rl.allow("a", 0.0) == 0
    assert rl.allow("b", 0.0) == 0
    wait = rl.allow("c", 0.25)
    assert wait == pytest.approx(0.75)  # until a has refilled
    assert "c" not in rl._buckets
    assert rl.allow("c", 1.0) == 0
    assert list(rl._buckets) == ["c"]  # a and b had both refilled


def test_a_seen_client_moves_to_the_back() -> None:
    rl = RateLimit(1.0, 2, max_clients=2)
    rl.allow("a", 0.0)
    rl.allow("b", 0.1)
    rl.allow("a", 0.2)  # a is now the most recently seen
    assert list(rl._buckets) == ["b", "a"]


def test_spraying_peers_keeps_their_keys_bounded_and_the_throttled_client_throttled() -> None:
    def admit(rl: RateLimit, peer: str) -> bool:
        try:
            rl.admit(Context(SimpleNamespace(client=peer), None, None, 0.0))
        except HTTPError as refused:
            assert refused.status == 503
            return False
        return True

    rl = RateLimit(1e-3, 2, max_clients=100)
    assert admit(rl, "203.0.113.7:4000") and admit(rl, "203.0.113.7:4001")
    assert not admit(rl, "203.0.113.7:4002")  # the burst is per address, whatever the port
    for port in range(1, 1000):  # one source's ports: ten times the table
        admit(rl, f"198.51.100.1:{port}")
    assert len(rl._keys) <= 100
    assert not admit(rl, "203.0.113.7:4000")  # its key forgotten, its bucket not


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("192.0.2.1:5000", "192.0.2.1"),
        ("[2001:db8::1]:5000", "2001:db8::/64"),
        ("[2001:db8::ffff:1:2]:6000", "2001:db8::/64"),  # same /64: one host's addresses
        ("2001:db8:0:1::1:443", "2001:db8:0:1::/64"),
        ("[::ffff:192.0.2.1]:80", "192.0.2.1"),
        ("[fe80::1%eth0]:80", "fe80::/64"),  # a zone id names no other host
        ("192.0.2.1", "192.0.2.1"),  # no port
        ("[not-an-address]:1", "not-an-address"),  # kept as it is, never an error
    ],
)
def test_client_key(peer: str, key: str) -> None:
    assert client_key(peer) == key


def get_from(port: int, source: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


def test_server_keeps_a_throttled_client_throttled(server_factory: ServerFactory) -> None:
    server = server_factory(
        env={
            "WEBHOOKFAST_RATE_LIMIT_RPS": "0.01",
            "WEBHOOKFAST_RATE_LIMIT_BURST": "3",
            "WEBHOOKFAST_RATE_LIMIT_MAX_CLIENTS": "4",
        }
    )
    # The harness's health checks came from 127.0.0.1: throttle 127.0.0.2 (loopback is all of 127/8).
    assert [get_from(server.port, "127.0.0.2") for _ in range(4)] == [200, 200, 200, 503]
    sprayed = [get_from(server.port, f"127.0.0.{i}") for i in range(3, 13)]
    # The table holds 4 clients that are all refilling: the rest wait (503), nobody is forgotten.
    assert sprayed.count(200) <= 3 and sprayed[-1] == 503
    assert get_from(server.port, "127.0.0.2") == 503

"""The in-process tier and the codec: byte bound, GDSF eviction, TTL, compression."""

from __future__ import annotations

import json
import os

from tradingbot_agents.cache import Codec, L1Cache
from tradingbot_agents.cache.l1 import ENTRY_OVERHEAD


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_byte_bound_holds_while_inserting_far_more_than_it() -> None:
    bound = 64 * 1024
    l1 = L1Cache(bound)
    value = b"x" * 500
    for i in range(5000):  # ~3 MB written through a 64 KB cache
        assert l1.set(f"cold:{i}", value, ttl=60, cost=0.001)
        assert l1.bytes_used <= bound
    assert l1.counters.evictions > 4500
    assert l1.bytes_used > bound - 2 * (500 + 10 + ENTRY_OVERHEAD)  # evicts only what it must
    assert l1.bytes_used == sum(len(e.data) + len(k) + ENTRY_OVERHEAD for k, e in l1._entries.items())


def test_hot_and_costly_keys_survive_a_flood_of_cold_cheap_ones() -> None:
    l1 = L1Cache(64 * 1024)
    value = b"v" * 500
    hot = [f"hot:{i}" for i in range(10)]  # cheap to fetch but read all the time
    costly = [f"costly:{i}" for i in range(10)]  # read once, but a 2 s fetch to get back
    for key in hot:
        l1.set(key, value, ttl=60, cost=0.001)
    for key in costly:
        l1.set(key, value, ttl=60, cost=2.0)
    for i in range(5000):
        l1.set(f"cold:{i}", value, ttl=60, cost=0.001)
        if i % 20 == 0:
            for key in hot:
                assert l1.get(key) is not None, f"{key} evicted at insert {i}"
        assert l1.bytes_used <= l1.max_bytes
    assert all(key in l1 for key in hot)
    assert all(key in l1 for key in costly)
    survivors = sum(f"cold:{i}" in l1 for i in range(5000))
    assert survivors < 120  # the flood itself cycles through the rest of the space
    assert l1.counters.evictions >= 5000 - survivors - 1


def test_a_key_hot_long_ago_ages_out() -> None:
    """Recency decay: past frequency does not pin an entry forever."""
    l1 = L1Cache(64 * 1024)
    l1.set("once-hot", b"v" * 500, ttl=600, cost=0.001)
    for _ in range(50):
        l1.get("once-hot")
    for i in range(30_000):
        l1.set(f"cold:{i}", b"v" * 500, ttl=600, cost=0.001)
    assert "once-hot" not in l1


def test_value_larger_than_the_bound_is_rejected() -> None:
    l1 = L1Cache(4096)
    l1.set("small", b"s", ttl=60)
    assert not l1.set("huge", b"h" * 10_000, ttl=60)
    assert "huge" not in l1 and "small" in l1
    assert l1.counters.rejected == 1


def test_ttl_expiry_and_counters() -> None:
    clock = FakeClock()
    l1 = L1Cache(1 << 20, clock=clock)
    l1.set("short", b"1", ttl=1.0)
    l1.set("long", b"2", ttl=10.0)
    assert l1.get("short") == b"1"
    assert l1.remaining_ttl("short") == 1.0
    clock.now += 1.5
    assert l1.get("short") is None
    assert l1.get("long") == b"2"
    clock.now += 9.0
    assert l1.purge_expired() == 1
    assert len(l1) == 0 and l1.bytes_used == 0
    c = l1.counters
    assert (c.hits, c.misses, c.expirations) == (2, 1, 2)


def test_rewrite_keeps_frequency_and_accounts_bytes() -> None:
    l1 = L1Cache(1 << 20)
    l1.set("k", b"a" * 100, ttl=60)
    for _ in range(5):
        l1.get("k")
    l1.set("k", b"b" * 10, ttl=60)
    assert l1._entries["k"].frequency == 6
    assert l1.bytes_used == 10 + 1 + ENTRY_OVERHEAD
    assert l1.delete("k") and l1.bytes_used == 0


def test_codec_compresses_large_values_and_round_trips() -> None:
    codec = Codec(enable_compression=True, compress_threshold=1024)
    klines = [[1700000000000 + i * 3600_000, "37000.1", "37100.0", "36900.5", "37050.2", "123.4"]
              for i in range(500)]
    encoded = codec.encode(klines)
    assert Codec.is_compressed(encoded)
    assert len(encoded) < len(json.dumps(klines)) / 3
    assert codec.decode(encoded) == klines

    small = {"symbol": "BTCUSDT", "price": "37000.1"}
    assert not Codec.is_compressed(codec.encode(small))  # under the threshold
    assert codec.decode(codec.encode(small)) == small

    noise = os.urandom(4096)  # incompressible: stored plain, never grown
    assert not Codec.is_compressed(codec.encode(noise))
    assert codec.decode(codec.encode(noise)) == noise

    blob = b"\x00" * 5000
    assert Codec.is_compressed(codec.encode(blob)) and codec.decode(codec.encode(blob)) == blob

    off = Codec(enable_compression=False)
    assert not Codec.is_compressed(off.encode(klines)) and off.decode(off.encode(klines)) == klines


def test_expired_entries_make_room_before_live_ones() -> None:
    clock = FakeClock()
    entry = 500 + len("old:0") + ENTRY_OVERHEAD
    l1 = L1Cache(10 * entry, clock=clock)
    for i in range(5):
        l1.set(f"old:{i}", b"o" * 500, ttl=1.0, cost=5.0)  # costly, but about to expire
    for i in range(5):
        l1.set(f"new:{i}", b"n" * 500, ttl=60.0, cost=0.001)
    clock.now += 2.0
    for i in range(5, 10):
        l1.set(f"new:{i}", b"n" * 500, ttl=60.0, cost=0.001)
    assert all(f"new:{i}" in l1 for i in range(10))
    assert l1.counters.evictions == 0 and l1.counters.expirations == 5

"""Pair leases in a JetStream KV bucket: who trades a pair (decisions.md, "Who trades a pair").

One key per pair (the symbol) holding the worker id. Taking a pair is ``kv.create``, a
compare-and-set that fails with ``KeyWrongLastSequenceError`` when the key exists, so two workers
can never both succeed. The holder renews with ``kv.update(last=revision)``; a renewal that finds
another revision means the lease was lost. The bucket's TTL (max age) is one heartbeat timeout, so
the keys of a dead worker vanish on their own and another worker creates them.

Why a local deadline as well (the fence): the server removes an expired key up to a fraction of a
second late, never early, and it counts the TTL from when it stored the renewal, which is after
the worker sent it. So a worker that trusts its lease only until ``send time of its last successful
renewal + TTL`` stops trading a pair before anyone else can take it, even when its own renewals are
stuck (a paused process, a partitioned connection). That is what makes "never two holders" hold
for trading, not only for the KV.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)


@dataclass
class Lease:
    symbol: str
    revision: int
    valid_until: float  # local monotonic deadline


async def open_lease_bucket(js: Any, bucket: str, ttl_s: float) -> KeyValue:
    """The LEASES bucket with its TTL; every worker opens the same one (creation is idempotent)."""
    try:
        return await js.create_key_value(bucket=bucket, ttl=ttl_s, history=1)
    except nats.js.errors.BadRequestError:
        return await js.key_value(bucket)


class LeaseTable:
    """The leases one worker holds, over the shared bucket."""

    def __init__(self, kv: KeyValue, holder: str, ttl_s: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kv = kv
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock
        self._held: dict[str, Lease] = {}

    @property
    def held(self) -> list[str]:
        """Pairs this worker may trade NOW (lease renewed within the TTL)."""
        now = self.clock()
        return sorted(s for s, lease in self._held.items() if lease.valid_until > now)

    def holds(self, symbol: str) -> bool:
        lease = self._held.get(symbol)
        return lease is not None and lease.valid_until > self.clock()

    async def acquire(self, symbol: str) -> bool:
        """Take a free pair (compare-and-set); False if someone holds it."""
        if self.holds(symbol):
            return True
        sent = self.clock()
        try:
            revision = await self.kv.create(symbol, self.holder.encode())
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            # Held by someone (or it expired in the middle of nats-py's create, which then raises
            # "not found"): either way not ours this round; the next poll tries again.
            return False
        self._held[symbol] = Lease(symbol, revision, sent + self.ttl_s)
        log.info("took the lease of %s (revision %d)", symbol, revision)
        return True

    async def renew(self) -> list[str]:
        """Renew every lease; returns the pairs lost (taken by another after an expiry)."""
        lost: list[str] = []
        for symbol, lease in list(self._held.items()):
            sent = self.clock()
            try:
                lease.revision = await self.kv.update(symbol, self.holder.encode(), last=lease.revision)
                lease.valid_until = sent + self.ttl_s
            except nats.js.errors.KeyWrongLastSequenceError:
                del self._held[symbol]
                lost.append(symbol)
                log.warning("lost the lease of %s (expired before renewal)", symbol)
            except (nats.errors.Error, TimeoutError) as exc:
                # Unknown outcome: keep the old revision; the local deadline fences trading.
                log.warning("renewing the lease of %s failed: %s", symbol, exc)
                if lease.valid_until <= self.clock():
                    del self._held[symbol]
                    lost.append(symbol)
        return lost

    async def release(self, symbol: str) -> None:
        """Give a pair back now (only if the key is still ours: delete with the last revision)."""
        lease = self._held.pop(symbol, None)
        if lease is None:
            return
        try:
            await self.kv.delete(symbol, last=lease.revision)
            log.info("released the lease of %s", symbol)
        except (nats.js.errors.Error, nats.errors.Error, TimeoutError) as exc:
            log.info("lease of %s not deleted (%s); it expires on its own", symbol, exc)

    async def release_all(self) -> None:
        for symbol in list(self._held):
            await self.release(symbol)


async def lease_holders(kv: KeyValue) -> dict[str, str]:
    """Every live lease in the bucket: pair -> holder (tests and status read this)."""
    holders: dict[str, str] = {}
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return holders
    for key in keys:
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue
        if entry.value:
            holders[key] = entry.value.decode()
    return holders

"""Versioned models in Redis, so a restarted RL agent serves at once instead of retraining.

Layout (every key carries the bot's identity, like everything else in the shared Redis):

* ``tb:<namespace>:<bot>:rl:model:seq`` — counter; version ``v<N>`` comes from ``INCR``, so two
  replicas saving at once never collide on a version;
* ``tb:<namespace>:<bot>:rl:model:v<N>`` — a hash: ``weights`` = the ``np.savez`` archive (bytes),
  ``meta`` = JSON (:class:`ModelMeta`: algorithm, shapes, hyper-parameters, training summary);
* ``tb:<namespace>:<bot>:rl:model:latest`` — the version to serve.

The version hash and the ``latest`` pointer are written in one MULTI/EXEC transaction, so a reader
never sees a pointer to a model that is not there. Only the newest ``keep`` versions are kept.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from tradingbot_agents.config import BotIdentity


class ModelMeta(BaseModel):
    """What a loader must know to rebuild the network and to trust it."""

    model_config = ConfigDict(extra="ignore")

    version: str = ""
    algorithm: str = "dqn"
    obs_layout: str = Field(default="returns-x100-clip10+position",
                            description="how observations were built; a change invalidates old models")
    window: int
    hidden_units: int
    hidden_layers: int
    n_actions: int
    fee: float
    seed: int
    symbols: list[str] = Field(default_factory=list)
    bars: int = 0
    trained_at: float = Field(default_factory=time.time)
    train: dict[str, float] = Field(default_factory=dict)
    hyper_parameters: dict[str, Any] = Field(default_factory=dict)


class StoredModel(BaseModel):
    meta: ModelMeta
    weights: bytes


class ModelStore:
    def __init__(self, redis: aioredis.Redis, identity: BotIdentity, *, keep: int = 5) -> None:
        self.redis = redis
        self.prefix = f"tb:{identity.namespace}:{identity.name}:rl:model"
        self.keep = keep

    def key(self, version: str) -> str:
        return f"{self.prefix}:{version}"

    @property
    def latest_key(self) -> str:
        return f"{self.prefix}:latest"

    async def save(self, meta: ModelMeta, weights: bytes) -> str:
        """Store a new version and point ``latest`` at it; returns the version."""
        number = int(await self.redis.incr(f"{self.prefix}:seq"))
        version = f"v{number}"
        stamped = meta.model_copy(update={"version": version})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(version), mapping={"weights": weights, "meta": stamped.model_dump_json()})
            pipe.set(self.latest_key, version)
            if number > self.keep:
                pipe.delete(*[self.key(f"v{n}") for n in range(max(1, number - self.keep - 4), number - self.keep + 1)])
            await pipe.execute()
        return version

    async def latest_version(self) -> str | None:
        value = await self.redis.get(self.latest_key)
        return value.decode() if isinstance(value, bytes) else value

    async def load(self, version: str) -> StoredModel | None:
        fields = await self.redis.hgetall(self.key(version))
        if not fields:
            return None
        meta = ModelMeta.model_validate_json(fields[b"meta"])
        return StoredModel(meta=meta, weights=fields[b"weights"])

    async def load_latest(self) -> StoredModel | None:
        version = await self.latest_version()
        return None if version is None else await self.load(version)

"""Versioned models through a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import redis.asyncio as aioredis

from tradingbot_agents.config import Config, RLAgentSettings
from tradingbot_agents.rl.env import observation_from_closes
from tradingbot_agents.rl.policy import Policy
from tradingbot_agents.rl.store import ModelStore

SETTINGS = RLAgentSettings(seed=3, hidden_units=8, window=6, train_episodes=2, episode_bars=40)


def closes(seed: int, bars: int = 200) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, bars)))


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_save_then_load_gives_identical_q_values_and_a_version(
    make_config: Callable[..., Config], redis_client: aioredis.Redis
) -> None:
    config = make_config()
    store = ModelStore(redis_client, config.bot)
    assert await store.load_latest() is None
    policy, _ = Policy.train({"AAA": closes(1)}, SETTINGS)
    version = await store.save(policy.meta, policy.dqn.weights_bytes())
    assert version == "v1"
    assert await store.latest_version() == "v1"
    prefix = f"tb:{config.bot.namespace}:{config.bot.name}:rl:model"
    assert await redis_client.get(f"{prefix}:latest") == b"v1"
    assert set(await redis_client.hkeys(f"{prefix}:v1")) == {b"weights", b"meta"}

    stored = await store.load_latest()
    assert stored is not None and stored.meta.version == "v1"
    assert stored.meta.window == 6 and stored.meta.symbols == ["AAA"] and stored.meta.train["episodes"] == 2
    loaded = Policy.from_stored(stored, SETTINGS)
    assert loaded.compatible_with(SETTINGS)
    assert not loaded.compatible_with(SETTINGS.model_copy(update={"window": 7}))
    probe = closes(9, 30)
    for position in (-1.0, 0.0, 1.0):
        obs = observation_from_closes(probe, 6, position)
        assert np.array_equal(loaded.dqn.q_values(obs), policy.dqn.q_values(obs))

    # A retrained model is the next version and becomes the latest.
    retrained, _ = Policy.train({"AAA": closes(2)}, SETTINGS)
    assert await store.save(retrained.meta, retrained.dqn.weights_bytes()) == "v2"
    latest = await store.load_latest()
    assert latest is not None and latest.meta.version == "v2"
    assert latest.weights == retrained.dqn.weights_bytes()


async def test_old_versions_are_pruned_and_bots_do_not_share_models(
    make_config: Callable[..., Config], redis_client: aioredis.Redis
) -> None:
    config = make_config()
    other = make_config(bot={"name": config.bot.name + "-b"})
    store = ModelStore(redis_client, config.bot, keep=2)
    policy, _ = Policy.train({"AAA": closes(1)}, SETTINGS)
    for _ in range(4):
        await store.save(policy.meta, policy.dqn.weights_bytes())
    assert await store.load("v1") is None and await store.load("v2") is None
    assert await store.load("v3") is not None and await store.load("v4") is not None
    assert await ModelStore(redis_client, other.bot).load_latest() is None

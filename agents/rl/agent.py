"""The RL agent: trains a DQN policy on klines, keeps it versioned in Redis, publishes advice.

* Start: the latest model in Redis (``tb:<ns>:<bot>:rl:model:latest``) is loaded if it fits the
  configured network, so a restarted agent advises at once; otherwise it trains first.
* Training: klines come from the data agents over the bus (``MarketDataClient``; this agent never
  calls the exchange), ``train_bars`` 1h bars per symbol, ``train_episodes`` episodes of
  ``episode_bars`` bars. The numpy work runs in a thread (``asyncio.to_thread``) so heartbeats and
  advice keep flowing; every ``retrain_interval`` a new version is trained, saved and swapped in
  (sooner while the history available was shorter than ``train_bars``, see :meth:`retrain_delay`).
* Advice: every ``advice_interval``, per symbol, ``RLAdvice`` on ``rl.advice.<SYMBOL>`` from the
  latest closed 1h candles. The observation's position is the position the agent's own previous
  advice implied for that symbol (it starts flat): the policy learned that switching costs fees,
  and it only behaves as trained if it is told what it currently "holds".
* Symbols: ``rl_agent.symbols``, else ``pairs.static`` plus the pair selector's active pairs (read
  from the PAIRS KV bucket at start, then followed on ``pairs.active``).
* Health: waiting for symbols or for enough history is normal at start-up and keeps health ``ok``
  (``/readyz`` says ``model: false`` until a model serves, ``waiting`` says why); market data or
  Redis failing lowers it to ``degraded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from redis.exceptions import RedisError

from tradingbot_agents.bus import BusError
from tradingbot_agents.data.client import MarketDataClient, MarketDataUnavailable
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import ActivePairs, HealthStatus, RLAdvice
from tradingbot_agents.pairselector.store import open_pairs_bucket, read_active_pairs
from tradingbot_agents.rl.policy import Policy
from tradingbot_agents.rl.store import ModelStore
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)

KLINE_INTERVAL = "1h"


class NoSymbols(Exception):
    """Nothing to train on or advise about yet (no configured symbols, no active pairs)."""


class NotEnoughHistory(Exception):
    """The klines served so far are shorter than one observation window (a replay just started)."""


def closed_closes(bars: list[Any]) -> np.ndarray:
    """Closes of the closed candles: the last bar of a klines answer is the one still forming."""
    return np.array([bar.close for bar in bars[:-1]], dtype=np.float64)


class RLAgent(Agent):
    kind = AgentKind.RL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.config.rl_agent
        self.redis = aioredis.Redis.from_url(self.config.redis.url,
                                             socket_timeout=self.config.redis.socket_timeout,
                                             socket_connect_timeout=self.config.redis.socket_timeout)
        self.store = ModelStore(self.redis, self.config.bot)
        self.market = MarketDataClient(self.bus, self.subjects, self.agent_id)
        self.policy: Policy | None = None
        self.positions: dict[str, float] = {}
        self.active_pairs: list[str] = []
        self._stop_training = threading.Event()
        self.advice_published = 0
        self.advice_errors = 0
        self.trainings = 0
        self.last_train_seconds = 0.0
        self.loaded_from_store = False
        self.waiting = "starting"
        self.short_history = False  # the last training saw fewer bars than train_bars asks for

    # -- lifecycle ----------------------------------------------------------------------------
    async def setup(self) -> None:
        await self.bus.subscribe(self.subjects.pairs_active, ActivePairs, self._on_active_pairs)
        if not self.settings.symbols:
            await self._read_active_pairs()
        await self._load_stored()

    async def run(self) -> None:
        retry = min(self.settings.advice_interval, 5.0)
        while self.policy is None and not self.stopping.is_set():
            if not await self._train_once():
                await self._sleep(retry)
        if self.policy is None:
            return
        await asyncio.gather(self.every(self.settings.advice_interval, self.advise_all), self._retrain_loop())

    async def teardown(self) -> None:
        self._stop_training.set()
        await self.market.close()
        await self.redis.aclose()

    def readiness(self) -> dict[str, bool]:
        return {**super().readiness(), "model": self.policy is not None}

    def stats(self) -> dict[str, float]:
        version = self.policy.version if self.policy else ""
        match = re.fullmatch(r"v(\d+)", version)
        return {"rl_advice_published": float(self.advice_published), "rl_advice_errors": float(self.advice_errors),
                "rl_trainings": float(self.trainings), "rl_model_version": float(match.group(1)) if match else 0.0,
                "rl_last_train_seconds": round(self.last_train_seconds, 3)}

    # -- symbols ------------------------------------------------------------------------------
    def symbols(self) -> list[str]:
        if self.settings.symbols:
            return list(self.settings.symbols)
        return sorted({*self.config.pairs.static, *self.active_pairs})

    async def _on_active_pairs(self, pairs: ActivePairs, _msg: Msg) -> None:
        self.active_pairs = list(pairs.pairs)

    async def _read_active_pairs(self) -> None:
        """The selector publishes on change only: a late starter reads the current list from KV."""
        try:
            kv = await open_pairs_bucket(self.bus.js, self.subjects.kv_bucket("PAIRS"))
            current = await read_active_pairs(kv)
        except Exception as exc:  # JetStream unavailable: the subscription still catches the next list
            log.warning("cannot read the active pairs from KV: %s", exc)
            return
        if current is not None and not self.active_pairs:
            self.active_pairs = list(current.pairs)

    # -- the model ----------------------------------------------------------------------------
    async def _load_stored(self) -> None:
        try:
            stored = await self.store.load_latest()
        except (ValueError, KeyError) as exc:
            log.warning("the latest stored model is unreadable (%s); training a new one", exc)
            return
        except RedisError as exc:
            self.health.set("redis", HealthStatus.DEGRADED, f"cannot read models: {exc}")
            return
        self.health.ok("redis")
        if stored is None:
            log.info("no stored model: training first")
            return
        try:
            policy = Policy.from_stored(stored, self.settings)
        except (ValueError, KeyError, TypeError) as exc:  # a damaged or foreign entry: train anew
            log.warning("stored model %s is unusable (%s); training a new one", stored.meta.version, exc)
            return
        if not policy.compatible_with(self.settings):
            log.info("stored model %s was built for another network or input; training a new one", policy.version)
            return
        self._use(policy)
        self.loaded_from_store = True
        log.info("serving stored model %s (trained %.0f s ago)", policy.version, time.time() - policy.meta.trained_at)

    def _use(self, policy: Policy) -> None:
        self.policy = policy
        self.waiting = ""

    async def _fetch_series(self) -> dict[str, np.ndarray]:
        symbols = self.symbols()
        if not symbols:
            raise NoSymbols("no symbols configured and no active pairs received yet")
        replies = await asyncio.gather(*(self.market.klines(s, KLINE_INTERVAL, self.settings.train_bars)
                                         for s in symbols), return_exceptions=True)
        series: dict[str, np.ndarray] = {}
        for symbol, reply in zip(symbols, replies, strict=True):
            if isinstance(reply, BaseException):
                log.warning("no training klines for %s: %s", symbol, reply)
                continue
            series[symbol] = closed_closes(reply.bars)
        if not series:
            raise MarketDataUnavailable("no klines for any symbol")
        usable = {s: c for s, c in series.items() if len(c) > self.settings.window + 2}
        if not usable:
            raise NotEnoughHistory(f"{max(map(len, series.values()))} closed bars so far, "
                                   f"need more than {self.settings.window + 2}")
        return usable

    async def _train_once(self) -> bool:
        """Fetch klines, train a new version off the event loop, save it, serve it."""
        try:
            series = await self._fetch_series()
        except (NoSymbols, NotEnoughHistory) as exc:
            if self.waiting != str(exc):
                log.info("waiting to train: %s", exc)
            self.waiting = str(exc)
            self.health.ok("training")
            return False
        except (MarketDataUnavailable, BusError) as exc:
            self.waiting = f"market data: {exc}"
            self.health.set("training", HealthStatus.DEGRADED, f"cannot fetch klines to train: {exc}")
            return False
        self.short_history = min(map(len, series.values())) < self.settings.train_bars - 1
        started = time.perf_counter()
        policy, report = await asyncio.to_thread(Policy.train, series, self.settings, stop=self._stop_training)
        if report.stopped_early:
            return False
        self.last_train_seconds = time.perf_counter() - started
        self.trainings += 1
        self.health.ok("training")
        try:
            version = await self.store.save(policy.meta, policy.dqn.weights_bytes())
            self.health.ok("redis")
        except RedisError as exc:
            version = f"unsaved-{self.trainings}"
            self.health.set("redis", HealthStatus.DEGRADED, f"model not saved: {exc}")
        policy.meta = policy.meta.model_copy(update={"version": version})
        self._use(policy)
        log.info("trained model %s on %s in %.1f s (%d episodes, mean reward of the last 10: %.4f)",
                 version, ",".join(policy.meta.symbols), self.last_train_seconds, report.episodes,
                 report.mean_episode_reward_last10)
        return True

    def retrain_delay(self) -> float:
        """``retrain_interval``; sooner (10 advice rounds) while the model was trained on less
        history than ``train_bars`` (a replay that just started, a new listing), so an early model
        built from a few bars is not served for a whole interval."""
        if self.short_history:
            return min(self.settings.retrain_interval, 10 * self.settings.advice_interval)
        return self.settings.retrain_interval

    async def _retrain_loop(self) -> None:
        while not self.stopping.is_set():
            await self._sleep(self.retrain_delay())
            if not self.stopping.is_set():
                await self._train_once()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # -- advice -------------------------------------------------------------------------------
    async def advise_all(self) -> None:
        symbols = self.symbols()
        results = await asyncio.gather(*(self.advise(s) for s in symbols), return_exceptions=True)
        failed = [s for s, r in zip(symbols, results, strict=True) if isinstance(r, BaseException)]
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("no advice for %s: %s", symbol, result)
        self.advice_errors += len(failed)
        if failed:
            self.health.set("market_data", HealthStatus.DEGRADED, f"no klines for {', '.join(failed)}")
        else:
            self.health.ok("market_data")

    async def advise(self, symbol: str) -> RLAdvice:
        """Advice for one symbol from its latest closed candles, published and returned."""
        policy = self.policy
        if policy is None:
            raise RuntimeError("no model")
        data = await self.market.klines(symbol, KLINE_INTERVAL, policy.env.window + 2)
        advice = policy.advise(closed_closes(data.bars), self.positions.get(symbol, 0.0))
        message = RLAdvice(symbol=symbol, action=advice.action, confidence=advice.confidence,
                           q_values=advice.q_values, model_version=policy.version)
        await self.bus.publish(self.subjects.rl_advice(symbol), message)
        self.positions[symbol] = advice.position
        self.advice_published += 1
        return message

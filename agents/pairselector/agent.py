"""The pair selector agent: which symbols the bot trades.

Every ``pairs.refresh_interval`` it fetches 1h klines of each candidate through the data agents
(``MarketDataClient``: never the exchange directly), ranks them (:mod:`.ranking`), keeps at most
``pairs.max_pairs`` and publishes :class:`ActivePairs` on ``pairs.active``. The same message is
stored under key ``active`` of the PAIRS KV bucket, so a worker that starts later reads the current
list at once instead of waiting up to one refresh interval.

Candidates: ``pairs.static`` when set. Without it the selector needs the data agent to list the
symbols quoted in ``pairs.quote_asset`` (a look-up the data agent does not offer yet); until then
it reports itself degraded with that reason rather than inventing a list.

Spread: the data agents serve klines and tickers only, so the spread is the Corwin–Schultz
high/low estimate (see :mod:`tradingbot_agents.indicators`), labelled as a proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.js.kv import KeyValue

from tradingbot_agents.bus import BusError
from tradingbot_agents.data.client import MarketDataClient, MarketDataUnavailable
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import ActivePairs, HealthStatus
from tradingbot_agents.pairselector.ranking import (
    BARS_PER_DAY,
    PairMetrics,
    Selection,
    Weights,
    metrics_from_bars,
    select,
)
from tradingbot_agents.pairselector.store import ACTIVE_KEY, open_pairs_bucket
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)

FIRST_SELECTION_RETRY_S = 2.0

class PairSelectorAgent(Agent):
    kind = AgentKind.PAIR_SELECTOR

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.market: MarketDataClient | None = None
        self.kv: KeyValue | None = None
        self.active: ActivePairs | None = None
        self.last_selection: Selection | None = None
        self.evaluations = 0

    async def setup(self) -> None:
        self.market = MarketDataClient(self.bus, self.subjects, self.agent_id)
        self.kv = await open_pairs_bucket(self.bus.js, self.subjects.kv_bucket("PAIRS"))

    async def run(self) -> None:
        # Until a first list is out (the data agents may still be starting), retry every few
        # seconds rather than waiting a whole refresh interval with nothing to trade.
        retry = min(self.config.pairs.refresh_interval, FIRST_SELECTION_RETRY_S)
        while not self.stopping.is_set() and await self.evaluate() is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), retry)
        await self.every(self.config.pairs.refresh_interval, self.evaluate)

    async def teardown(self) -> None:
        if self.market is not None:
            await self.market.close()

    # -- one evaluation -------------------------------------------------------------------------
    async def candidates(self) -> list[str]:
        """``pairs.static`` when given, else every symbol the exchange lists as trading in the quote
        asset (asked of the data agents, which cache exchangeInfo)."""
        quote = self.config.pairs.quote_asset
        static = [s for s in dict.fromkeys(self.config.pairs.static) if s.endswith(quote)]
        if static or self.config.pairs.static:
            return static
        assert self.market is not None
        try:
            return await self.market.list_symbols(quote, timeout=2.0)
        except Exception as exc:
            log.warning("no symbol list from the data agents: %s", exc)
            return []

    async def evaluate(self) -> ActivePairs | None:
        symbols = await self.candidates()
        if not symbols:
            self.health.set("candidates", HealthStatus.DEGRADED,
                            f"no candidate symbols: pairs.static holds none quoted in "
                            f"{self.config.pairs.quote_asset} and the data agents listed none")
            return None
        self.health.ok("candidates")
        metrics = await self._metrics(symbols)
        if not metrics:
            self.health.set("market_data", HealthStatus.DEGRADED, "no klines for any candidate")
            return None
        settings = self.config.pair_selector
        selection = select(
            metrics,
            weights=Weights(settings.volume_weight, settings.volatility_weight, settings.spread_weight),
            max_pairs=self.config.pairs.max_pairs, max_correlation=settings.max_correlation,
            min_quote_volume=self.config.pairs.min_quote_volume_24h)
        for symbol, (twin, corr) in selection.dropped_correlated.items():
            log.info("dropped %s: correlation %.3f with %s exceeds %.2f", symbol, corr, twin,
                     settings.max_correlation)
        active = ActivePairs(pairs=[p.symbol for p in selection.chosen], ranked=selection.ranked)
        await self.bus.publish(self.subjects.pairs_active, active)
        assert self.kv is not None
        await self.kv.put(ACTIVE_KEY, active.model_dump_json().encode())
        if self.active is None or self.active.pairs != active.pairs:
            log.info("active pairs: %s", ", ".join(active.pairs) or "(none)")
        self.active, self.last_selection = active, selection
        self.evaluations += 1
        return active

    async def _metrics(self, symbols: list[str]) -> list[PairMetrics]:
        assert self.market is not None
        lookback = max(self.config.pair_selector.lookback_bars, BARS_PER_DAY)
        results = await asyncio.gather(*(self.market.klines(s, "1h", lookback) for s in symbols),
                                       return_exceptions=True)
        metrics: list[PairMetrics] = []
        failed: list[str] = []
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, MarketDataUnavailable | BusError):
                failed.append(symbol)
                log.warning("no klines for %s: %s", symbol, result)
            elif isinstance(result, BaseException):
                raise result
            elif len(result.bars) >= BARS_PER_DAY:
                metrics.append(metrics_from_bars(symbol, result.bars, lookback))
            else:
                failed.append(symbol)
        if failed and metrics:
            self.health.set("market_data", HealthStatus.DEGRADED, f"no klines for {', '.join(failed)}")
        elif metrics:
            self.health.ok("market_data")
        return metrics

    def stats(self) -> dict[str, float]:
        selection = self.last_selection
        return {
            "pairs_active": float(len(self.active.pairs) if self.active else 0),
            "candidates": float(len(selection.ranked) if selection else 0),
            "dropped_correlated": float(len(selection.dropped_correlated) if selection else 0),
            "evaluations": float(self.evaluations),
        }

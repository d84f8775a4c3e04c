"""The sentiment agent: social and news text → one smoothed score per symbol on the bus.

Every ``fetch_interval`` it fetches all enabled sources in parallel (each within its own timeout),
scores the texts with VADER plus a crypto lexicon in a worker thread, maps texts to symbols, takes
the weighted mean per symbol over the sources that produced data (a failed source's weight goes to
the others), smooths it with an EMA over the symbol's recent history and publishes
``SentimentScore`` on ``sentiment.<SYMBOL>`` (and the overall mood on ``sentiment.MARKET``).

A failing source marks its own health component ``degraded`` with the reason; the agent goes on
with the rest and the component turns ``ok`` again on the first clean fetch. Only when every
enabled source fails is the agent ``failed``: it then has nothing to say.

Which symbols: ``sentiment_agent.symbols`` if set, else the pair selector's active pairs, else all
the symbols the mapper knows (whatever is mentioned is published).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from fastapi import FastAPI
from nats.aio.msg import Msg
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tradingbot_agents.config import Config, Secrets
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import ActivePairs, HealthStatus, SentimentScore
from tradingbot_agents.runtime import Agent
from tradingbot_agents.sentiment.aggregate import SmoothedHistory, aggregate
from tradingbot_agents.sentiment.fetcher import SourceOutcome, fetch_all
from tradingbot_agents.sentiment.lexicon import build_analyzer
from tradingbot_agents.sentiment.metrics import SentimentMetrics
from tradingbot_agents.sentiment.scoring import MARKET, score_round
from tradingbot_agents.sentiment.sources import USER_AGENT, Source, build_sources
from tradingbot_agents.sentiment.symbols import SymbolMapper

log = logging.getLogger(__name__)


class SentimentAgent(Agent):
    kind = AgentKind.SENTIMENT

    def __init__(self, config: Config, *, secrets: Secrets | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        settings = config.sentiment_agent
        self.settings = settings
        # Raises ConfigError (exit 2) on an unknown source name, before anything starts.
        self.sources: list[Source] = build_sources(settings, secrets if secrets is not None else Secrets.from_env())
        self.mapper = SymbolMapper()
        self.history = SmoothedHistory(settings.smoothing_alpha, settings.history_size)
        self.metrics = SentimentMetrics(self.registry)
        self.latest: dict[str, SentimentScore] = {}
        self.last_outcomes: dict[str, SourceOutcome] = {}
        self.rounds = 0
        self.texts_scored = 0
        self.published = 0
        self._fetches = {s.name: 0 for s in self.sources}
        self._errors = {s.name: 0 for s in self.sources}
        self._active_pairs: list[str] = []
        self._http: httpx.AsyncClient | None = None
        self._analyzer: SentimentIntensityAnalyzer | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def setup(self) -> None:
        self._http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, follow_redirects=True,
            limits=httpx.Limits(max_connections=self.settings.max_concurrency))
        # Loading VADER's lexicon reads and parses a 7,500-line file: not on the event loop.
        self._analyzer = await asyncio.to_thread(build_analyzer)
        if not self.settings.symbols:
            await self.bus.subscribe(self.subjects.pairs_active, ActivePairs, self._on_active_pairs)
        if not self.sources:
            self.health.set("sources", HealthStatus.DEGRADED, "no sentiment source is enabled")
        log.info("sentiment sources: %s", ", ".join(f"{s.name} (weight {s.weight:g})" for s in self.sources) or "none")

    async def run(self) -> None:
        await self.every(self.settings.fetch_interval, self.fetch_round)

    async def teardown(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _on_active_pairs(self, pairs: ActivePairs, _msg: Msg) -> None:
        self._active_pairs = list(pairs.pairs)

    # -- one round ----------------------------------------------------------------------------
    def scope(self) -> set[str]:
        """The symbols published this round (always with MARKET)."""
        chosen = self.settings.symbols or self._active_pairs or self.mapper.symbols
        return {*chosen, MARKET}

    async def fetch_round(self) -> dict[str, SentimentScore]:
        """Fetch, score, aggregate, smooth, publish. Returns what was published (for tests)."""
        if not self.sources:
            return {}
        assert self._http is not None and self._analyzer is not None, "setup() not run"
        started = time.monotonic()
        outcomes = await fetch_all(self.sources, self._http, self.settings.max_concurrency)
        self._record(outcomes)
        texts = {o.name: o.texts for o in outcomes if o.produced}
        scores = await asyncio.to_thread(score_round, self._analyzer, self.mapper, texts)
        weights = {s.name: s.weight for s in self.sources}
        aggregates = aggregate(scores, weights)
        published: dict[str, SentimentScore] = {}
        scope = self.scope()
        for symbol, agg in aggregates.items():
            if symbol not in scope:
                continue
            message = SentimentScore(
                symbol=symbol, score=round(self.history.add(symbol, agg.raw), 6), raw_score=round(agg.raw, 6),
                sources={k: round(v, 6) for k, v in agg.sources.items()},
                weights={k: round(v, 6) for k, v in agg.weights.items()}, samples=agg.samples)
            await self.bus.publish(self.subjects.sentiment(symbol), message)
            self.metrics.score.labels(symbol).set(message.score)
            published[symbol] = message
        self.latest.update(published)
        self.published += len(published)
        self.metrics.published.inc(len(published))
        self.rounds += 1
        self.metrics.round_seconds.observe(time.monotonic() - started)
        return published

    def _record(self, outcomes: list[SourceOutcome]) -> None:
        """Counters, metrics and health from one round's outcomes."""
        weights = {s.name: s.weight for s in self.sources}
        for outcome in outcomes:
            name = outcome.name
            self.last_outcomes[name] = outcome
            self._fetches[name] += 1
            self.texts_scored += len(outcome.texts)
            self.metrics.texts.labels(name).inc(len(outcome.texts))
            self.metrics.fetch_seconds.labels(name).observe(outcome.seconds)
            self.metrics.source_up.labels(name).set(1 if outcome.ok else 0)
            if outcome.ok:
                self.metrics.fetches.labels(name, "ok").inc()
                self.health.ok(f"source.{name}")
                continue
            self._errors[name] += 1
            self.metrics.fetches.labels(name, "partial" if outcome.produced else "error").inc()
            what = "partly failing" if outcome.produced else "failing"
            consequence = "" if outcome.produced else f"; its weight {weights[name]:g} is redistributed"
            self.health.set(f"source.{name}", HealthStatus.DEGRADED,
                            f"{name} {what}: {'; '.join(outcome.errors)}{consequence}")
            log.warning("sentiment source %s: %s", name, "; ".join(outcome.errors))
        if outcomes and not any(o.produced for o in outcomes):
            self.health.set("sources", HealthStatus.FAILED, "no sentiment source produced data")
        elif self.sources:
            self.health.ok("sources")

    # -- reporting ----------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        stats: dict[str, float] = {
            "rounds": float(self.rounds),
            "texts_scored": float(self.texts_scored),
            "scores_published": float(self.published),
        }
        for name in self._fetches:
            stats[f"fetches.{name}"] = float(self._fetches[name])
            stats[f"fetch_errors.{name}"] = float(self._errors[name])
        return stats

    def add_routes(self, app: FastAPI) -> None:
        @app.get("/sentiment")
        async def sentiment() -> dict[str, Any]:
            return {
                "scores": {symbol: score.model_dump() for symbol, score in sorted(self.latest.items())},
                "sources": {
                    name: {"weight": next(s.weight for s in self.sources if s.name == name),
                           "ok": outcome.ok, "texts": len(outcome.texts), "errors": outcome.errors,
                           "seconds": round(outcome.seconds, 4)}
                    for name, outcome in self.last_outcomes.items()
                },
                "stats": self.stats(),
            }

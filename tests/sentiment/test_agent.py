"""The sentiment agent end to end: local replay servers → agent → real NATS → a subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pytest_httpserver import HTTPServer

from tests.sentiment.conftest import GUARDIAN_RSS, JSON_REDDIT, JSON_X, RSS, X_SEARCH, crafted_listing
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config, Secrets
from tradingbot_agents.messages import ActivePairs, HealthStatus, Heartbeat, SentimentScore, Subjects
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.runtime import EXIT_OK
from tradingbot_agents.sentiment.agent import SentimentAgent
from tradingbot_agents.sentiment.lexicon import build_analyzer, score
from tradingbot_agents.sentiment.parsers import parse_feed, parse_x_search

# TEST-MADE titles (see crafted_listing): the recorded listings name no coin.
CRYPTO_TITLES = [
    "Bitcoin to the moon, so bullish on BTC!",
    "Ethereum got rekt after the bridge hack",
    "ETH/USDT rug pull fears, I got liquidated",
]
ANALYZER = build_analyzer()


class Inbox:
    """Scores and heartbeats received over NATS, with waiting helpers."""

    def __init__(self) -> None:
        self.scores: list[SentimentScore] = []
        self.beats: list[Heartbeat] = []
        self.changed = asyncio.Event()

    async def on_score(self, score_: SentimentScore, _msg: Any) -> None:
        self.scores.append(score_)
        self.changed.set()

    async def on_beat(self, beat: Heartbeat, _msg: Any) -> None:
        self.beats.append(beat)
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := predicate()):
                self.changed.clear()
                await self.changed.wait()
        return found

    def latest(self, symbol: str, after: int = 0) -> SentimentScore | None:
        for message in reversed(self.scores[after:]):
            if message.symbol == symbol:
                return message
        return None


@pytest.fixture
async def listener(make_config: Callable[..., Config]) -> AsyncIterator[tuple[Bus, Inbox]]:
    config = make_config()
    bus = Bus(config.nats, name="listener", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    inbox = Inbox()
    subjects = Subjects(config.bot)
    await bus.subscribe(subjects.sentiment_all, SentimentScore, inbox.on_score)
    await bus.subscribe(subjects.heartbeats, Heartbeat, inbox.on_beat)
    yield bus, inbox
    await bus.close()


async def start(agent: SentimentAgent) -> asyncio.Task[int]:
    task = asyncio.create_task(agent.serve())
    async with asyncio.timeout(10):
        while not agent.ready:
            assert not task.done(), f"agent exited early: {task.result()}"
            await asyncio.sleep(0.02)
    return task


async def stop(agent: SentimentAgent, task: asyncio.Task[int]) -> None:
    agent.request_stop()
    assert await asyncio.wait_for(task, 15) == EXIT_OK


def sources_config(reddit: HTTPServer, news: HTTPServer, x: HTTPServer) -> dict[str, Any]:
    return {
        "reddit": {"enabled": True, "weight": 0.6, "url": reddit.url_for("/"), "targets": ["CryptoCurrency"],
                   "timeout_s": 2},
        "news": {"enabled": True, "weight": 0.3, "url": news.url_for("/"), "targets": ["us/rss"], "timeout_s": 2},
        "x": {"enabled": True, "weight": 0.1, "url": x.url_for("/"), "targets": ["Tweepy"], "timeout_s": 2},
    }


@pytest.mark.parametrize("garbage", ["html", "truncated", "status500"])
async def test_garbage_source_degrades_health_and_the_rest_keeps_publishing(
        make_config: Callable[..., Config], make_server: Callable[[], HTTPServer],
        listener: tuple[Bus, Inbox], garbage: str) -> None:
    _, inbox = listener
    reddit, news, x = make_server(), make_server(), make_server()
    reddit.expect_request("/r/CryptoCurrency/hot.json").respond_with_data(
        crafted_listing(CRYPTO_TITLES), content_type=JSON_REDDIT)
    x.expect_request("/2/tweets/search/recent").respond_with_data(X_SEARCH.read_bytes(), content_type=JSON_X)
    if garbage == "html":
        news.expect_request("/us/rss").respond_with_data(
            "<html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
            content_type="text/html")
    elif garbage == "truncated":
        news.expect_request("/us/rss").respond_with_data(GUARDIAN_RSS.read_bytes()[:300], content_type=RSS)
    else:
        news.expect_request("/us/rss").respond_with_data("upstream error", status=500)

    config = make_config(sentiment_agent={"sources": sources_config(reddit, news, x), "fetch_interval": 0.25})
    agent = SentimentAgent(config, secrets=Secrets(x_bearer_token="x-token"))
    task = await start(agent)
    try:
        await inbox.wait_for(lambda: all(inbox.latest(s) for s in ("BTCUSDT", "ETHUSDT", "ADAUSDT", "MARKET")))
        reddit_scores = [score(ANALYZER, t) for t in CRYPTO_TITLES]
        x_scores = [score(ANALYZER, t) for t in parse_x_search(X_SEARCH.read_bytes())]

        btc = inbox.latest("BTCUSDT")
        assert btc is not None and btc.weights == {"reddit": 1.0} and btc.samples == 1
        assert btc.raw_score == pytest.approx(reddit_scores[0], abs=1e-6) and btc.raw_score > 0.5
        eth = inbox.latest("ETHUSDT")
        assert eth is not None and eth.samples == 2 and eth.raw_score < -0.5
        ada = inbox.latest("ADAUSDT")  # the recorded tweets tagged #Cardano (3 retweets)
        assert ada is not None and ada.weights == {"x": 1.0} and ada.samples == 3
        market = inbox.latest("MARKET")
        assert market is not None
        # news failed: its 0.3 went to reddit and x in proportion (0.6 : 0.1)
        assert market.weights == {"reddit": pytest.approx(6 / 7, abs=1e-6), "x": pytest.approx(1 / 7, abs=1e-6)}
        expected = 6 / 7 * sum(reddit_scores) / 3 + 1 / 7 * sum(x_scores) / len(x_scores)
        assert market.raw_score == pytest.approx(expected, abs=1e-5)

        health = agent.health.components()["source.news"]
        assert health.status is HealthStatus.DEGRADED
        assert health.reason.startswith("news failing: us/rss: ")
        assert "weight 0.3 is redistributed" in health.reason
        beat = await inbox.wait_for(lambda: next(
            (b for b in reversed(inbox.beats) if b.agent_id == agent.agent_id and b.stats.get("rounds", 0) >= 2),
            None))
        assert beat.health.status is HealthStatus.DEGRADED and "news failing" in beat.health.reason
        assert beat.stats["fetch_errors.news"] >= 1 and beat.stats["fetch_errors.reddit"] == 0

        # still running and still publishing from the others, round after round
        seen = len(inbox.scores)
        await inbox.wait_for(lambda: inbox.latest("BTCUSDT", after=seen))
        assert not task.done()
    finally:
        await stop(agent, task)


async def test_source_recovers_and_health_returns_to_ok(
        make_config: Callable[..., Config], make_server: Callable[[], HTTPServer],
        listener: tuple[Bus, Inbox]) -> None:
    _, inbox = listener
    reddit, news, x = make_server(), make_server(), make_server()
    reddit.expect_request("/r/CryptoCurrency/hot.json").respond_with_data(
        crafted_listing(CRYPTO_TITLES), content_type=JSON_REDDIT)
    x.expect_request("/2/tweets/search/recent").respond_with_data(X_SEARCH.read_bytes(), content_type=JSON_X)
    news.expect_request("/us/rss").respond_with_data("<html>maintenance</html>", content_type="text/html")
    config = make_config(sentiment_agent={"sources": sources_config(reddit, news, x), "fetch_interval": 0.25,
                                          "smoothing_alpha": 0.5, "history_size": 10})
    agent = SentimentAgent(config, secrets=Secrets(x_bearer_token="x-token"))
    task = await start(agent)
    try:
        await inbox.wait_for(lambda: agent.health.components().get("source.news"))
        assert agent.health.overall().status is HealthStatus.DEGRADED
        degraded_market = await inbox.wait_for(lambda: inbox.latest("MARKET"))

        news.clear_all_handlers()  # the feed comes back
        news.expect_request("/us/rss").respond_with_data(GUARDIAN_RSS.read_bytes(), content_type=RSS)
        seen = len(inbox.scores)
        market = await inbox.wait_for(
            lambda: (m := inbox.latest("MARKET", after=seen)) is not None and "news" in m.weights and m)
        assert market.weights == pytest.approx({"reddit": 0.6, "news": 0.3, "x": 0.1})
        news_mean = sum(score(ANALYZER, t) for t in parse_feed(GUARDIAN_RSS.read_bytes())) / 55
        assert market.sources["news"] == pytest.approx(news_mean, abs=1e-5)
        assert market.samples == 3 + 55 + 10
        # smoothing: the first full round is blended with the history (alpha 0.5), not a jump
        assert market.score != pytest.approx(market.raw_score)
        assert agent.history.history("MARKET")[0] == pytest.approx(degraded_market.raw_score, abs=1e-6)
        assert agent.health.components()["source.news"].status is HealthStatus.OK
        assert agent.health.overall().status is HealthStatus.OK

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{agent.http_port}/metrics")).text
            view = (await http.get(f"http://127.0.0.1:{agent.http_port}/sentiment")).json()
        assert 'tradingbot_sentiment_fetches_total{outcome="error",source="news"}' in metrics
        assert 'tradingbot_sentiment_source_up{source="news"} 1.0' in metrics
        assert view["sources"]["news"]["ok"] is True and view["sources"]["news"]["texts"] == 55
        stats = agent.stats()
        assert stats["fetch_errors.news"] >= 1 and stats["fetches.news"] > stats["fetch_errors.news"]
        assert stats["texts_scored"] >= 55
    finally:
        await stop(agent, task)


async def test_all_sources_failing_is_failed_and_active_pairs_scope_publishing(
        make_config: Callable[..., Config], make_server: Callable[[], HTTPServer],
        listener: tuple[Bus, Inbox]) -> None:
    bus, inbox = listener
    reddit = make_server()
    reddit.expect_request("/r/CryptoCurrency/hot.json").respond_with_data("bad gateway", status=502)
    config = make_config(sentiment_agent={"fetch_interval": 0.2, "sources": {
        "reddit": {"enabled": True, "weight": 0.6, "url": reddit.url_for("/"), "targets": ["CryptoCurrency"]}}})
    agent = SentimentAgent(config, secrets=Secrets())
    task = await start(agent)
    try:
        await inbox.wait_for(lambda: agent.rounds >= 1)
        overall = agent.health.overall()
        assert overall.status is HealthStatus.FAILED
        assert "no sentiment source produced data" in overall.reason and "HTTP 502" in overall.reason
        assert not inbox.scores and not task.done()

        # the source comes back; only the active pairs (and MARKET) are published
        await bus.publish(agent.subjects.pairs_active, ActivePairs(pairs=["ETHUSDT"]))
        await inbox.wait_for(lambda: agent._active_pairs == ["ETHUSDT"])
        reddit.clear_all_handlers()
        reddit.expect_request("/r/CryptoCurrency/hot.json").respond_with_data(
            crafted_listing(CRYPTO_TITLES), content_type=JSON_REDDIT)
        await inbox.wait_for(lambda: inbox.latest("ETHUSDT") and inbox.latest("MARKET"))
        assert inbox.latest("BTCUSDT") is None  # mentioned, but not an active pair
        assert agent.health.overall().status is HealthStatus.OK
    finally:
        await stop(agent, task)

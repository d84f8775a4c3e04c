"""Prometheus metrics of the sentiment agent (on the agent's own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SentimentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fetches = Counter(
            "tradingbot_sentiment_fetches_total", "Source fetches per round, by outcome (ok, partial, error)",
            ["source", "outcome"], registry=registry)
        self.fetch_seconds = Histogram(
            "tradingbot_sentiment_fetch_seconds", "Time to fetch one source (all its targets)", ["source"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)
        self.texts = Counter(
            "tradingbot_sentiment_texts_scored_total", "Texts scored, by source", ["source"], registry=registry)
        self.source_up = Gauge(
            "tradingbot_sentiment_source_up", "1 if the source's last fetch had no error", ["source"],
            registry=registry)
        self.score = Gauge(
            "tradingbot_sentiment_score", "Latest smoothed score per symbol", ["symbol"], registry=registry)
        self.published = Counter(
            "tradingbot_sentiment_scores_published_total", "SentimentScore messages published", registry=registry)
        self.round_seconds = Histogram(
            "tradingbot_sentiment_round_seconds", "One round: fetch, score, aggregate, publish",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=registry)

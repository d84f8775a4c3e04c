"""Each source against a local server replaying recorded payloads, over a real httpx client."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.sentiment.conftest import (
    ATOM,
    GUARDIAN_RSS,
    HEISE_ATOM,
    JSON_REDDIT,
    JSON_X,
    PAYLOADS,
    REDDIT_LISTING,
    REDDIT_TOKEN,
    RSS,
    X_SEARCH,
)
from tradingbot_agents.config import Secrets, SourceSettings
from tradingbot_agents.sentiment.fetcher import fetch_all
from tradingbot_agents.sentiment.sources import FileSource, NewsSource, RedditSource, XSource

CREDENTIALS = Secrets(reddit_client_id="app-id", reddit_client_secret="app-secret", x_bearer_token="x-token")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def settings(url: str | None = None, targets: list[str] | None = None, timeout_s: float = 5.0) -> SourceSettings:
    return SourceSettings(enabled=True, weight=0.5, url=url, targets=targets or [], timeout_s=timeout_s)


async def test_reddit_oauth_then_listing(make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    basic = base64.b64encode(b"app-id:app-secret").decode()
    server.expect_oneshot_request(
        "/api/v1/access_token", method="POST", headers={"Authorization": f"Basic {basic}"},
        data="grant_type=client_credentials",
    ).respond_with_data(REDDIT_TOKEN.read_bytes(), content_type=JSON_REDDIT)
    server.expect_request(
        "/r/popular/hot", query_string={"limit": "100", "raw_json": "1"},
        headers={"Authorization": "bearer <ACCESS_TOKEN>"},  # the recorded (redacted) token
    ).respond_with_data(REDDIT_LISTING.read_bytes(), content_type=JSON_REDDIT)
    source = RedditSource(settings(server.url_for("/"), ["popular"]), CREDENTIALS)
    first = await source.fetch(http, asyncio.Semaphore(4))
    second = await source.fetch(http, asyncio.Semaphore(4))
    assert first.errors == [] and len(first.texts) == 100
    assert second.texts == first.texts
    assert [r.path for r, _ in server.log].count("/api/v1/access_token") == 1  # token reused
    server.check_assertions()


async def test_reddit_without_credentials_reads_the_public_json(
        make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    server.expect_request("/r/popular/hot.json", query_string={"limit": "100", "raw_json": "1"}) \
        .respond_with_data(REDDIT_LISTING.read_bytes(), content_type=JSON_REDDIT)
    result = await RedditSource(settings(server.url_for("/"), ["r/popular"]), Secrets()).fetch(
        http, asyncio.Semaphore(1))
    assert result.errors == [] and len(result.texts) == 100
    assert all("Authorization" not in r.headers for r, _ in server.log)


async def test_news_rss_and_atom(make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    server.expect_request("/us/rss").respond_with_data(GUARDIAN_RSS.read_bytes(), content_type=RSS)
    server.expect_request("/developer/rss/news-atom.xml").respond_with_data(HEISE_ATOM.read_bytes(), content_type=ATOM)
    source = NewsSource(settings(server.url_for("/"), ["/us/rss", server.url_for("/developer/rss/news-atom.xml")]),
                        Secrets())
    result = await source.fetch(http, asyncio.Semaphore(2))
    assert result.errors == []
    assert len(result.texts) == 55 + 15


async def test_x_recent_search_with_bearer(make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    server.expect_request(
        "/2/tweets/search/recent", query_string={"query": "Tweepy", "max_results": "100"},
        headers={"Authorization": "Bearer x-token"},
    ).respond_with_data(X_SEARCH.read_bytes(), content_type=JSON_X)
    result = await XSource(settings(server.url_for("/"), ["Tweepy"]), CREDENTIALS).fetch(http, asyncio.Semaphore(1))
    assert result.errors == [] and len(result.texts) == 10


async def test_x_401_names_the_missing_token(make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    server.expect_request("/2/tweets/search/recent").respond_with_json(
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, status=401)
    result = await XSource(settings(server.url_for("/"), ["btc"]), Secrets()).fetch(http, asyncio.Semaphore(1))
    assert result.texts == []
    assert result.errors == ["btc: HTTP 401 from /2/tweets/search/recent (X_BEARER_TOKEN is not set)"]


async def test_file_source_reads_recorded_payload_directories(http: httpx.AsyncClient) -> None:
    source = FileSource(settings(targets=[str(PAYLOADS / "twitter"), str(PAYLOADS / "reddit")]), Secrets())
    result = await source.fetch(http, asyncio.Semaphore(1))
    # twitter/: the live search (10) + the docs example (4); reddit/: the listing (100); the token
    # reply and *.meta.json files are skipped when scanning a directory
    assert result.errors == [] and len(result.texts) == 10 + 4 + 100
    token = await FileSource(settings(targets=[str(REDDIT_TOKEN)]), Secrets()).fetch(http, asyncio.Semaphore(1))
    assert token.texts == [] and "neither a reddit Listing nor an X search" in token.errors[0]
    missing = await FileSource(settings(targets=["/nonexistent/x.json"]), Secrets()).fetch(http, asyncio.Semaphore(1))
    assert missing.errors == ["/nonexistent/x.json: no such file or directory"]


@pytest.mark.parametrize(("status", "body", "expected"), [
    (500, b"Internal Server Error", "HTTP 500 from /r/popular/hot.json"),
    (200, b"<html><body>Our CDN is having a bad day</body></html>", "garbage body (reddit: not JSON"),
    (200, REDDIT_LISTING.read_bytes()[:1000], "garbage body (reddit: not JSON"),  # truncated
])
async def test_reddit_failures_are_errors_not_exceptions(
        make_server: Callable[[], HTTPServer], http: httpx.AsyncClient, status: int, body: bytes,
        expected: str) -> None:
    server = make_server()
    server.expect_request("/r/popular/hot.json").respond_with_data(body, status=status, content_type="text/html")
    result = await RedditSource(settings(server.url_for("/"), ["popular"]), Secrets()).fetch(
        http, asyncio.Semaphore(1))
    assert result.texts == [] and len(result.errors) == 1
    assert result.errors[0].startswith(f"popular: {expected}")


async def test_partial_failure_keeps_the_targets_that_answered(
        make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    server.expect_request("/good.rss").respond_with_data(GUARDIAN_RSS.read_bytes(), content_type=RSS)
    server.expect_request("/bad.rss").respond_with_data("nope", status=503)
    result = await NewsSource(settings(server.url_for("/"), ["good.rss", "bad.rss"]), Secrets()).fetch(
        http, asyncio.Semaphore(2))
    assert len(result.texts) == 55
    assert result.errors == ["bad.rss: HTTP 503 from /bad.rss"]


async def test_slow_sources_do_not_delay_the_others_beyond_their_timeout(
        make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    fast_reddit, slow_x, slow_news = make_server(), make_server(), make_server()
    fast_reddit.expect_request("/r/popular/hot.json").respond_with_data(
        REDDIT_LISTING.read_bytes(), content_type=JSON_REDDIT)

    def stall(_request: Request) -> Response:
        time.sleep(1.5)  # a server that accepts and then hangs
        return Response(X_SEARCH.read_bytes(), content_type=JSON_X)

    slow_news.expect_request("/feed").respond_with_handler(stall)
    slow_x.expect_request("/2/tweets/search/recent").respond_with_handler(stall)
    sources = [  # slow ones first: fetched one after another, the round would take 0.8 s or more
        NewsSource(settings(slow_news.url_for("/"), ["feed"], timeout_s=0.4), Secrets()),
        XSource(settings(slow_x.url_for("/"), ["Tweepy"], timeout_s=0.4), CREDENTIALS),
        RedditSource(settings(fast_reddit.url_for("/"), ["popular"]), Secrets()),
    ]
    started = time.monotonic()
    outcomes = {o.name: o for o in await fetch_all(sources, http, max_concurrency=3)}
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 0.7, elapsed
    for name in ("news", "x"):
        assert outcomes[name].texts == [] and len(outcomes[name].errors) == 1
        assert "timeout after 0.4s" in outcomes[name].errors[0]
    assert len(outcomes["reddit"].texts) == 100 and outcomes["reddit"].ok
    assert outcomes["reddit"].seconds < 0.3


async def test_concurrency_is_bounded_across_targets(
        make_server: Callable[[], HTTPServer], http: httpx.AsyncClient) -> None:
    server = make_server()
    lock = threading.Lock()
    in_flight, peak = 0, 0

    def feed(_request: Request) -> Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.15)
        with lock:
            in_flight -= 1
        return Response(HEISE_ATOM.read_bytes(), content_type=ATOM)

    server.expect_request("/feed").respond_with_handler(feed)
    source = NewsSource(settings(server.url_for("/"), ["feed?a=1", "feed?a=2", "feed?a=3", "feed?a=4"]), Secrets())
    result = await source.fetch(http, asyncio.Semaphore(2))
    assert result.errors == [] and len(result.texts) == 4 * 15
    assert peak == 2

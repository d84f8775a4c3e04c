"""Local HTTP servers replaying recorded payloads for the sentiment sources (never the internet)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

PAYLOADS = Path(__file__).resolve().parents[2] / "data" / "payloads"
REDDIT_LISTING = PAYLOADS / "reddit" / "r_popular_hot_limit100.json"
REDDIT_TOKEN = PAYLOADS / "reddit" / "oauth_access_token.json"
X_SEARCH = PAYLOADS / "twitter" / "v2_tweets_search_recent.json"
GUARDIAN_RSS = PAYLOADS / "rss" / "guardian_us.rss.xml"
HEISE_ATOM = PAYLOADS / "rss" / "heise_developer.atom.xml"

JSON_REDDIT = "application/json; charset=UTF-8"  # as recorded
JSON_X = "application/json; charset=utf-8"  # as recorded
RSS = "application/rss+xml; charset=UTF-8"
ATOM = "application/atom+xml; charset=UTF-8"


def crafted_listing(titles: list[str]) -> bytes:
    """TEST-MADE, not recorded: a reddit Listing in the recorded payload's shape, with our titles.
    The recorded listings are r/popular, which names no coin; symbol mapping needs coin names."""
    recorded = json.loads(REDDIT_LISTING.read_bytes())
    template = recorded["data"]["children"][0]
    children = []
    for i, title in enumerate(titles):
        child = json.loads(json.dumps(template))
        child["data"].update({"title": title, "selftext": "", "id": f"test{i}", "name": f"t3_test{i}"})
        children.append(child)
    recorded["data"].update({"children": children, "dist": len(children)})
    return json.dumps(recorded).encode()


@pytest.fixture
def make_server() -> Iterator[Callable[[], HTTPServer]]:
    """Independent threaded servers: one per external service, as on the internet, so a slow one
    never holds a request of another."""
    servers: list[HTTPServer] = []

    def make() -> HTTPServer:
        server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.clear()
        if server.is_running():
            server.stop()

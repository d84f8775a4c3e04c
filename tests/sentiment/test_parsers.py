"""Parsers against the recorded payloads, and garbage that must be told apart from "nothing said"."""

from __future__ import annotations

import pytest

from tests.sentiment.conftest import GUARDIAN_RSS, HEISE_ATOM, PAYLOADS, REDDIT_LISTING, X_SEARCH
from tradingbot_agents.sentiment.parsers import (
    PayloadError,
    parse_any,
    parse_feed,
    parse_reddit_listing,
    parse_x_search,
    sniff,
)


def test_recorded_reddit_listing() -> None:
    texts = parse_reddit_listing(REDDIT_LISTING.read_bytes())
    assert len(texts) == 100  # dist 100, every child a t3 post with a title
    assert texts[0].startswith("Ulberg on Jiri showing mercy")


def test_recorded_x_search() -> None:
    texts = parse_x_search(X_SEARCH.read_bytes())
    assert len(texts) == 10 and texts[1] == "2022-10-07 23:06:12.640564 tweepy"
    expansions = PAYLOADS / "twitter" / "v2_tweets_search_recent_expansions.docs-example.json"
    assert len(parse_x_search(expansions.read_bytes())) == 4
    assert parse_x_search(b'{"meta": {"result_count": 0}}') == []  # no match is not an error


def test_recorded_feeds_rss_and_atom() -> None:
    guardian = parse_feed(GUARDIAN_RSS.read_bytes())
    assert len(guardian) == 55
    assert guardian[0].startswith("Trump State of the Union address promised unity but emphasized discord\n")
    assert "<p>" not in guardian[0]  # HTML of the description stripped
    heise = parse_feed(HEISE_ATOM.read_bytes())
    assert len(heise) == 15 and heise[0].startswith("Java-Anwendungsserver: Red Hat gibt WildFly 10 frei")


def test_feeds_cut_short() -> None:
    assert len(parse_feed(HEISE_ATOM.read_bytes()[:3000])) == 2  # cut after two entries: keep them
    with pytest.raises(PayloadError):
        parse_feed(GUARDIAN_RSS.read_bytes()[:300])  # cut inside the channel header: nothing usable
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    assert parse_feed(empty) == []


def test_sniff_recognises_each_recorded_format() -> None:
    assert sniff(REDDIT_LISTING.read_bytes()) == "reddit"
    assert sniff(X_SEARCH.read_bytes()) == "x"
    assert sniff(GUARDIAN_RSS.read_bytes()) == "news" and sniff(HEISE_ATOM.read_bytes()) == "news"
    assert len(parse_any(HEISE_ATOM.read_bytes())) == 15


GARBAGE = [
    b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    REDDIT_LISTING.read_bytes()[:5000],  # truncated JSON
    b"",
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize("parser", [parse_reddit_listing, parse_x_search, parse_feed])
def test_garbage_raises(parser, body: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PayloadError):
        parser(body)


def test_wrong_envelope_raises() -> None:
    with pytest.raises(PayloadError, match="not a Listing"):
        parse_reddit_listing(X_SEARCH.read_bytes())
    with pytest.raises(PayloadError, match="API error"):
        parse_x_search(b'{"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}')

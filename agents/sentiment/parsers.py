"""Payload parsers: bytes of a real API response → the texts worth scoring. Pure, no I/O.

Each parser raises :class:`PayloadError` on a body that is not what the API sends (HTML error page,
truncated JSON, wrong envelope), so the caller can tell "the source is broken" from "the source had
nothing to say" (an empty listing is valid and returns ``[]``).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import feedparser


class PayloadError(ValueError):
    """The body is not a valid payload of the expected API."""


class UnknownPayload(PayloadError):
    """Well-formed JSON of an API we do not read texts from (e.g. a recorded OAuth token reply)."""


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        head = body[:40].decode("utf-8", "replace").strip()
        raise PayloadError(f"{what}: not JSON ({exc.__class__.__name__} near {head!r})") from None


def _join(*parts: Any) -> str:
    return "\n".join(str(part).strip() for part in parts if isinstance(part, str) and part.strip())


def parse_reddit_listing(body: bytes) -> list[str]:
    """A subreddit listing (``{"kind": "Listing", "data": {"children": [{"kind": "t3", …}]}}``):
    each post's title and self text (``raw_json=1`` keeps them unescaped)."""
    data = _json(body, "reddit")
    if not isinstance(data, dict) or data.get("kind") != "Listing" or not isinstance(data.get("data"), dict):
        raise PayloadError("reddit: not a Listing")
    children = data["data"].get("children")
    if not isinstance(children, list):
        raise PayloadError("reddit: Listing without children")
    texts = []
    for child in children:
        post = child.get("data") if isinstance(child, dict) else None
        if isinstance(post, dict) and child.get("kind") in {"t3", "t1"}:
            text = _join(post.get("title"), post.get("selftext"), post.get("body"))
            if text:
                texts.append(text)
    return texts


def parse_x_search(body: bytes) -> list[str]:
    """X API v2 recent search (``{"data": [{"id", "text"}], "meta": {"result_count": n}}``); no
    match is ``{"meta": {"result_count": 0}}`` without ``data``. Errors come as ``{"errors": …}``."""
    data = _json(body, "x")
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
        if isinstance(data, dict) and ("errors" in data or "title" in data):
            detail = data.get("title") or data.get("detail") or data.get("errors")
            raise PayloadError(f"x: API error {detail!r}")
        raise PayloadError("x: not a search response (no meta)")
    tweets = data.get("data", [])
    if not isinstance(tweets, list):
        raise PayloadError("x: data is not a list")
    return [t["text"] for t in tweets if isinstance(t, dict) and isinstance(t.get("text"), str) and t["text"].strip()]


def parse_feed(body: bytes) -> list[str]:
    """RSS 2.0 or Atom: each entry's title and summary (HTML stripped by feedparser's sanitiser).

    feedparser is lenient: it flags malformed XML (``bozo``) yet often still finds entries. A feed
    with entries is accepted even if flagged (a feed cut after a few items still says something);
    a flagged feed without entries (HTML, a body cut in its header) is garbage, and so is a
    well-formed document without a feed title; a well-formed feed with no items is just quiet.
    """
    # A BytesIO, never bytes or str: given a string that looks like a URL or a path, feedparser
    # would fetch or open it.
    parsed = feedparser.parse(io.BytesIO(body))
    entries = parsed.get("entries") or []
    if not entries and (parsed.get("bozo") or not parsed.get("feed", {}).get("title")):
        cause = parsed.get("bozo_exception")
        raise PayloadError(f"news: not an RSS/Atom feed ({cause.__class__.__name__ if cause else 'no entries'})")
    texts = []
    for entry in entries:
        text = _join(entry.get("title"), _strip_html(entry.get("summary", "")))
        if text:
            texts.append(text)
    return texts


def _strip_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def sniff(body: bytes) -> str:
    """Which parser a recorded payload needs (for the file source): ``reddit``, ``x`` or ``news``."""
    head = body.lstrip()[:1]
    if head in {b"{", b"["}:
        data = _json(body, "file")
        if isinstance(data, dict) and data.get("kind") == "Listing":
            return "reddit"
        if isinstance(data, dict) and "meta" in data:
            return "x"
        raise UnknownPayload("file: JSON that is neither a reddit Listing nor an X search response")
    if head == b"<":
        return "news"
    raise PayloadError("file: neither JSON nor XML")


PARSERS = {"reddit": parse_reddit_listing, "x": parse_x_search, "news": parse_feed}


def parse_any(body: bytes) -> list[str]:
    return PARSERS[sniff(body)](body)

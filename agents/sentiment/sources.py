"""The sentiment sources: real HTTP clients (and a file reader) returning texts to score.

Every source speaks its API's real wire format, so pointing ``url`` at the real service or at a
local server replaying recorded responses exercises the same code:

* ``reddit``: ``GET {url}/r/{subreddit}/hot?limit=100&raw_json=1`` (a Listing). With
  ``REDDIT_CLIENT_ID``/``REDDIT_CLIENT_SECRET`` it takes an app-only OAuth token
  (``POST …/api/v1/access_token``, HTTP Basic, ``grant_type=client_credentials``) and calls
  ``oauth.reddit.com`` with ``Authorization: bearer``; without them it reads the public
  ``www.reddit.com/r/{subreddit}/hot.json`` (lower rate limit, same Listing).
* ``news``: RSS 2.0 / Atom feeds; targets are feed URLs (relative ones are joined to ``url``).
* ``x``: X API v2 ``GET {url}/2/tweets/search/recent?query=…`` with ``Authorization: Bearer``
  from ``X_BEARER_TOKEN`` (without it the API answers 401, reported as such).
* ``file``: recorded payloads on disk (files, or directories of ``*.json``/``*.xml``), for runs
  without network; the format of each file is recognised from its content.

A source returns the texts of every target that answered, plus one error line per target that did
not; parsing runs in a worker thread (a 0.5 MB listing or a feed must not stall the event loop).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import httpx

from tradingbot_agents.config import ConfigError, Secrets, SentimentAgentSettings, SourceSettings
from tradingbot_agents.sentiment.parsers import (
    PayloadError,
    UnknownPayload,
    parse_any,
    parse_feed,
    parse_reddit_listing,
    parse_x_search,
)

USER_AGENT = "python:tradingbot-sentiment:0.1 (shadow-mode trading bot)"


class SourceError(Exception):
    """A target of a source could not be read (HTTP error, timeout, garbage body)."""


@dataclass
class SourceResult:
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Source(ABC):
    """One configured source. ``fetch`` reads every target, at most ``slots`` requests at a time
    across all sources."""

    kind: ClassVar[str]
    default_targets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: SourceSettings, secrets: Secrets) -> None:
        self.settings = settings
        self.secrets = secrets

    @property
    def name(self) -> str:
        return self.kind

    @property
    def weight(self) -> float:
        return self.settings.weight

    @property
    def timeout_s(self) -> float:
        return self.settings.timeout_s

    def targets(self) -> list[str]:
        return list(self.settings.targets) or list(self.default_targets)

    async def fetch(self, http: httpx.AsyncClient, slots: asyncio.Semaphore) -> SourceResult:
        async def one(target: str) -> list[str] | str:
            try:
                async with slots:
                    return await self.fetch_target(http, target)
            except SourceError as exc:
                return f"{target}: {exc}"
            except PayloadError as exc:
                return f"{target}: garbage body ({exc})"
            except httpx.TimeoutException:
                return f"{target}: timeout after {self.timeout_s:g}s"
            except httpx.HTTPError as exc:
                return f"{target}: {exc.__class__.__name__}: {exc}"

        result = SourceResult()
        for outcome in await asyncio.gather(*(one(t) for t in self.targets())):
            if isinstance(outcome, str):
                result.errors.append(outcome)
            else:
                result.texts.extend(outcome)
        return result

    @abstractmethod
    async def fetch_target(self, http: httpx.AsyncClient, target: str) -> list[str]:
        """The texts of one target; raises on any failure."""

    async def _get(self, http: httpx.AsyncClient, url: str, *, params: dict[str, str | int] | None = None,
                   headers: dict[str, str] | None = None) -> bytes:
        response = await http.get(url, params=params, headers=headers, timeout=self.timeout_s)
        if response.status_code >= 400:
            hint = self._status_hint(response.status_code)
            raise SourceError(f"HTTP {response.status_code} from {response.url.path}{hint}")
        return response.content

    def _status_hint(self, status: int) -> str:
        return ""

    @staticmethod
    async def _parse(parser: Callable[[bytes], list[str]], body: bytes) -> list[str]:
        return await asyncio.to_thread(parser, body)


class RedditSource(Source):
    kind = "reddit"
    default_targets = ("CryptoCurrency", "Bitcoin", "ethereum", "CryptoMarkets")
    OAUTH_URL = "https://oauth.reddit.com"
    PUBLIC_URL = "https://www.reddit.com"
    TOKEN_URL = "https://www.reddit.com/api/v1/access_token"

    def __init__(self, settings: SourceSettings, secrets: Secrets) -> None:
        super().__init__(settings, secrets)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    @property
    def has_credentials(self) -> bool:
        return self.secrets.reddit_client_id is not None and self.secrets.reddit_client_secret is not None

    @property
    def base_url(self) -> str:
        if self.settings.url:
            return self.settings.url.rstrip("/")
        return self.OAUTH_URL if self.has_credentials else self.PUBLIC_URL

    @property
    def token_url(self) -> str:
        # A replay server (url set) serves the token endpoint too; the real API has two hosts.
        return f"{self.settings.url.rstrip('/')}/api/v1/access_token" if self.settings.url else self.TOKEN_URL

    async def _bearer(self, http: httpx.AsyncClient) -> str:
        async with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_expires:
                assert self.secrets.reddit_client_id and self.secrets.reddit_client_secret
                response = await http.post(
                    self.token_url, data={"grant_type": "client_credentials"}, timeout=self.timeout_s,
                    auth=(self.secrets.reddit_client_id.get_secret_value(),
                          self.secrets.reddit_client_secret.get_secret_value()))
                if response.status_code >= 400:
                    raise SourceError(f"HTTP {response.status_code} from the token endpoint "
                                      "(check REDDIT_CLIENT_ID/REDDIT_CLIENT_SECRET)")
                try:
                    payload = response.json()
                    token, expires_in = str(payload["access_token"]), float(payload.get("expires_in", 3600))
                except (ValueError, KeyError, TypeError) as exc:
                    raise SourceError(f"token endpoint sent no access_token ({exc.__class__.__name__})") from None
                # Renew a minute early so a round never starts with a token about to lapse.
                self._token, self._token_expires = token, time.monotonic() + max(expires_in - 60, 1)
            return self._token

    async def fetch_target(self, http: httpx.AsyncClient, target: str) -> list[str]:
        subreddit = quote(target.removeprefix("r/").strip("/"))
        headers: dict[str, str] = {}
        if self.has_credentials:
            headers["Authorization"] = f"bearer {await self._bearer(http)}"
            path = f"/r/{subreddit}/hot"
        else:
            path = f"/r/{subreddit}/hot.json"
        try:
            body = await self._get(http, self.base_url + path, params={"limit": 100, "raw_json": 1},
                                   headers=headers)
        except SourceError:
            if self.has_credentials:
                self._token = None  # a revoked or expired token: take a fresh one next round
            raise
        return await self._parse(parse_reddit_listing, body)


class NewsSource(Source):
    kind = "news"
    default_targets = ("https://www.coindesk.com/arc/outboundfeeds/rss/", "https://cointelegraph.com/rss")

    def _feed_url(self, target: str) -> str:
        if target.startswith(("http://", "https://")) or not self.settings.url:
            return target
        return f"{self.settings.url.rstrip('/')}/{target.lstrip('/')}"

    async def fetch_target(self, http: httpx.AsyncClient, target: str) -> list[str]:
        body = await self._get(http, self._feed_url(target))
        return await self._parse(parse_feed, body)


class XSource(Source):
    kind = "x"
    default_targets = ("(bitcoin OR ethereum OR crypto OR BTC OR ETH) lang:en -is:retweet",)
    API_URL = "https://api.x.com"

    async def fetch_target(self, http: httpx.AsyncClient, target: str) -> list[str]:
        headers = {}
        if self.secrets.x_bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.secrets.x_bearer_token.get_secret_value()}"
        base = (self.settings.url or self.API_URL).rstrip("/")
        body = await self._get(http, f"{base}/2/tweets/search/recent",
                               params={"query": target, "max_results": 100}, headers=headers)
        return await self._parse(parse_x_search, body)

    def _status_hint(self, status: int) -> str:
        if status == 401 and self.secrets.x_bearer_token is None:
            return " (X_BEARER_TOKEN is not set)"
        return ""


class FileSource(Source):
    kind = "file"

    @staticmethod
    def _files(target: str) -> list[Path]:
        path = Path(target)
        if path.is_dir():
            return sorted(p for p in path.rglob("*")
                          if p.suffix in {".json", ".xml"} and not p.name.endswith(".meta.json"))
        if not path.is_file():
            raise SourceError("no such file or directory")
        return [path]

    async def fetch_target(self, http: httpx.AsyncClient, target: str) -> list[str]:
        def read() -> list[str]:
            scanning = Path(target).is_dir()
            texts: list[str] = []
            for path in self._files(target):
                try:
                    texts.extend(parse_any(path.read_bytes()))
                except UnknownPayload:
                    if not scanning:  # named explicitly: the user meant it to be read
                        raise
                    # a directory of recordings also holds token replies and the like: skip them
                except PayloadError as exc:
                    raise PayloadError(f"{path.name}: {exc}") from None
            return texts

        return await asyncio.to_thread(read)


SOURCE_TYPES: dict[str, type[Source]] = {cls.kind: cls for cls in (RedditSource, NewsSource, XSource, FileSource)}


def build_sources(settings: SentimentAgentSettings, secrets: Secrets) -> list[Source]:
    """The enabled sources, in config order. Unknown names and unusable settings are config errors
    (exit 2 naming the key path), found at start rather than as a source that is silently absent."""
    problems: list[str] = []
    sources: list[Source] = []
    for name, source_settings in settings.sources.items():
        cls = SOURCE_TYPES.get(name)
        if cls is None:
            problems.append(f"sentiment_agent.sources.{name}: unknown source "
                            f"(known: {', '.join(sorted(SOURCE_TYPES))})")
            continue
        if not source_settings.enabled:
            continue
        if cls is FileSource and not source_settings.targets:
            problems.append(f"sentiment_agent.sources.{name}.targets: the file source needs at least one path")
            continue
        sources.append(cls(source_settings, secrets))
    if problems:
        raise ConfigError(problems)
    return sources

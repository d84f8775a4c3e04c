"""Typed exchange errors: every failure a caller can act on has its own class.

Why typed: the caller's reaction differs per failure (resync the clock on -1021, stop everything on
418, wait on 429, never retry a rejected order), and matching on message text breaks when Binance
rewords a message (its docs say codes are fixed, messages may vary).

Why no secrets in messages: exceptions end up in logs, alerts and Telegram. Messages here are built
from the exchange's ``code``/``msg``, the endpoint path (never the query string, which carries the
``signature``) and numbers; nothing else is ever formatted in.
"""

from __future__ import annotations

import re
from typing import Any


class ExchangeError(Exception):
    """Base of every error this package raises."""


class ExchangeTimeout(ExchangeError):
    """The request did not complete in time. For an order this means the outcome is UNKNOWN."""


class CircuitOpen(ExchangeError):
    """The circuit breaker is open: calls are refused locally until its reset timeout."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"circuit {name!r} is open; next trial in {retry_in:.2f}s")
        self.name = name
        self.retry_in = retry_in


class MalformedResponse(ExchangeError):
    """The body is not what the endpoint promises: HTML error page, truncated JSON, missing fields.

    Raised instead of ``KeyError``/``JSONDecodeError`` so one bad answer never crashes an agent."""

    def __init__(self, reason: str, *, http_status: int | None = None, path: str = "") -> None:
        where = f" from {path}" if path else ""
        super().__init__(f"malformed response{where} (HTTP {http_status}): {reason}")
        self.reason = reason
        self.http_status = http_status
        self.path = path


class ServerError(ExchangeError):
    """HTTP 5xx after the bounded retries. For an order a 503 means the status is unknown."""

    def __init__(self, http_status: int, path: str = "", detail: str = "") -> None:
        super().__init__(f"server error HTTP {http_status} from {path}{': ' + detail if detail else ''}")
        self.http_status = http_status
        self.path = path


class RateLimited(ExchangeError):
    """HTTP 429: request weight over budget. Every caller sharing the budget must wait."""

    def __init__(self, retry_after: float, msg: str = "") -> None:
        super().__init__(f"rate limited (HTTP 429); retry after {retry_after:.2f}s{': ' + msg if msg else ''}")
        self.retry_after = retry_after


class IPBanned(ExchangeError):
    """HTTP 418: the IP is banned for ignoring 429s. ``until`` is a Unix epoch time in seconds."""

    def __init__(self, until: float, msg: str = "") -> None:
        super().__init__(f"IP banned (HTTP 418) until epoch {until:.3f}{': ' + msg if msg else ''}")
        self.until = until


class ExchangeAPIError(ExchangeError):
    """An error body ``{"code": <negative int>, "msg": "..."}`` from the exchange."""

    code: int = 0

    def __init__(self, code: int, msg: str, http_status: int) -> None:
        super().__init__(f"exchange error {code} (HTTP {http_status}): {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


class InvalidSymbol(ExchangeAPIError):
    """-1121 Invalid symbol."""


class InvalidSignature(ExchangeAPIError):
    """-1022 Signature for this request is not valid (wrong secret, or the query was altered)."""


class TimestampOutsideRecvWindow(ExchangeAPIError):
    """-1021 Timestamp outside recvWindow: the local clock drifted; resync with the server time."""


class TooManyRequests(ExchangeAPIError):
    """-1003 Too many requests (the body that comes with a 429 or 418)."""


class UnknownOrder(ExchangeAPIError):
    """-2011 cancel rejected / -2013 order does not exist."""


_BY_CODE: dict[int, type[ExchangeAPIError]] = {
    -1121: InvalidSymbol,
    -1022: InvalidSignature,
    -1021: TimestampOutsideRecvWindow,
    -1003: TooManyRequests,
    -2011: UnknownOrder,
    -2013: UnknownOrder,
}


def api_error(code: int, msg: str, http_status: int) -> ExchangeAPIError:
    """The most specific :class:`ExchangeAPIError` subclass for ``code``."""
    return _BY_CODE.get(code, ExchangeAPIError)(code, msg, http_status)


def parse_error_body(body: Any) -> tuple[int, str] | None:
    """``(code, msg)`` when ``body`` is a Binance error object, else None."""
    if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] < 0:
        return body["code"], str(body.get("msg", ""))
    return None


_BAN_UNTIL = re.compile(r"banned until (\d{10,})")


def ban_until_from_message(msg: str) -> float | None:
    """The ban end (epoch seconds) from a message like "IP banned until 1532118492680."."""
    match = _BAN_UNTIL.search(msg)
    return int(match.group(1)) / 1000.0 if match else None


class ExchangeConnectionError(ExchangeError):
    """The connection could not be made (refused, DNS, reset before a response)."""

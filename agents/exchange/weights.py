"""Request weights per endpoint, as Binance documents them for USDⓈ-M futures.

One table used by both sides: the client reserves this weight *before* sending (so a burst waits
locally instead of earning a 429), and the simulator charges the same weight, so a benchmark reading
``/_sim/stats`` measures what the real exchange would have counted.
"""

from __future__ import annotations

from collections.abc import Mapping


def _klines_weight(limit: int) -> int:
    # Binance: LIMIT [1,100) -> 1, [100,500) -> 2, [500,1000] -> 5, > 1000 -> 10 (default limit 500).
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def _depth_weight(limit: int) -> int:
    # Binance: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20.
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def request_weight(method: str, path: str, params: Mapping[str, object] | None = None) -> int:
    """The IP request weight of one call. Unknown paths count 1 (conservative, never 0)."""
    params = params or {}
    has_symbol = params.get("symbol") not in (None, "")
    method = method.upper()
    if path == "/fapi/v1/ticker/price":
        return 1 if has_symbol else 2
    if path == "/fapi/v1/ticker/24hr":
        return 1 if has_symbol else 40
    if path in ("/fapi/v1/klines", "/fapi/v1/continuousKlines", "/fapi/v1/indexPriceKlines"):
        return _klines_weight(_int(params.get("limit"), 500))
    if path == "/fapi/v1/depth":
        return _depth_weight(_int(params.get("limit"), 500))
    if path in ("/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/positionRisk", "/fapi/v3/positionRisk"):
        return 5
    if path == "/fapi/v1/order":
        # A new order costs 0 on the IP weight (it counts on the ORDERS limits); cancel/query cost 1.
        return 0 if method == "POST" else 1
    if path == "/fapi/v1/openOrders":
        return 1 if has_symbol else 40
    return 1


def _int(value: object, default: int) -> int:
    try:
        return int(str(value)) if value is not None else default
    except ValueError:
        return default

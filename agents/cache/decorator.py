"""``@cache_decorator``: the seed's way to cache an async function's results.

Keys are ``<key_prefix>:<arguments>``, with arguments bound to the function's signature first, so
``f(1)``, ``f(x=1)`` and ``f()`` with default ``x=1`` share one entry. ``self``/``cls`` are left out
(methods of different instances share entries; the prefix is the place to tell them apart). Short
argument lists stay readable in the key (``klines:BTCUSDT:1h``); long ones are hashed so keys stay
short in Redis.

The cache is looked up at call time (``cache=None`` → :func:`get_global_cache`), so decorating a
function at import time does not freeze the L1-only default before the agent installs its own.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from tradingbot_agents.cache.cache import TwoTierCache, get_global_cache

P = ParamSpec("P")
R = TypeVar("R")
_MAX_PLAIN_ARGS = 120


def _arg_text(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))


def make_key(prefix: str, bound: inspect.BoundArguments) -> str:
    parts = [_arg_text(v) for name, v in bound.arguments.items() if name not in ("self", "cls")]
    args = ":".join(parts)
    if len(args) > _MAX_PLAIN_ARGS:
        args = "h" + hashlib.sha256(args.encode()).hexdigest()[:32]
    return f"{prefix}:{args}" if args else prefix


def cache_decorator(ttl: float | None = None, key_prefix: str | None = None, *,
                    cache: TwoTierCache | None = None, cost: float | None = None,
                    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Cache an ``async def`` through :meth:`TwoTierCache.get_or_fetch` (single-flight included).

    ``key_prefix`` defaults to the function's module and qualified name; ``ttl=None`` lets the cache
    adapt the TTL to how often the key is read."""

    def wrap(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"cache_decorator needs an async function, got {func!r}")
        signature = inspect.signature(func)
        prefix = key_prefix or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            target = cache or get_global_cache()
            return await target.get_or_fetch(make_key(prefix, bound),
                                             lambda: func(*args, **kwargs), ttl=ttl, cost=cost)

        return wrapper

    return wrap

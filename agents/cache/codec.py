"""Values as bytes: one encoding shared by the in-process tier and Redis.

Why bytes in L1 too: the L1 bound is in bytes, and only a serialized value has a size that can be
measured honestly (``sys.getsizeof`` of a dict says nothing about what it holds). Storing the same
bytes in both tiers also means an L2 hit is copied into L1 without re-encoding.

Why JSON and not pickle: the Redis tier is shared by every agent and replica of a bot, and
unpickling bytes read from a network service executes whatever they say. Cached market data
(tickers, klines, order books, exchange info) is JSON-shaped anyway. ``bytes`` values pass through
untouched, so a caller with its own format (numpy ``tobytes``, msgpack) can still use the cache.

Layout: one header byte, then the body.

* ``J``: JSON, UTF-8; ``Z``: zlib-compressed JSON;
* ``B``: raw bytes; ``C``: zlib-compressed raw bytes.

A body is compressed only when it is at least ``compress_threshold`` bytes long *and* compression
actually makes it smaller, so random-looking payloads never grow.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

_JSON, _JSON_Z, _RAW, _RAW_Z = b"J", b"Z", b"B", b"C"
_COMPRESSED = frozenset({_JSON_Z[0], _RAW_Z[0]})


class CodecError(ValueError):
    """A value that cannot be encoded, or bytes that are not one of ours."""


class Codec:
    """Encode values to tagged bytes, compressing large ones when enabled.

    ``level`` 1 is zlib's fastest: the cache exists to save latency, and on JSON market data the
    faster levels already get most of the size reduction.
    """

    def __init__(self, *, enable_compression: bool = True, compress_threshold: int = 1024,
                 level: int = 1) -> None:
        self.enable_compression = enable_compression
        self.compress_threshold = compress_threshold
        self.level = level

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            body, plain, packed = bytes(value), _RAW, _RAW_Z
        else:
            try:
                body = json.dumps(value, separators=(",", ":"), allow_nan=True).encode()
            except (TypeError, ValueError) as exc:
                raise CodecError(f"value is not JSON-serializable: {exc}") from exc
            plain, packed = _JSON, _JSON_Z
        if self.enable_compression and len(body) >= self.compress_threshold:
            squeezed = zlib.compress(body, self.level)
            if len(squeezed) < len(body):
                return packed + squeezed
        return plain + body

    def decode(self, data: bytes) -> Any:
        if not data:
            raise CodecError("empty cache payload")
        tag, body = data[:1], data[1:]
        if tag in (_JSON_Z, _RAW_Z):
            body = zlib.decompress(body)
        if tag in (_JSON, _JSON_Z):
            return json.loads(body)
        if tag in (_RAW, _RAW_Z):
            return body
        raise CodecError(f"unknown cache payload tag {tag!r}")

    @staticmethod
    def is_compressed(data: bytes) -> bool:
        return bool(data) and data[0] in _COMPRESSED

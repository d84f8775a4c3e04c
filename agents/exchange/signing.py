"""Binance SIGNED-endpoint request signing (HMAC SHA256).

The signature is the hex HMAC-SHA256 of the exact query string sent (``timestamp`` and
``recvWindow`` included), keyed by the API secret, appended as the last parameter ``signature``.
The API key travels in the ``X-MBX-APIKEY`` header. Signing the *encoded* string we send (not a
re-encoding of a dict) is what makes the server's recomputation match byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

from pydantic import SecretStr

API_KEY_HEADER = "X-MBX-APIKEY"


def sign(query_string: str, secret: SecretStr | str) -> str:
    """Hex HMAC-SHA256 of ``query_string`` under ``secret``."""
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(key.encode(), query_string.encode(), hashlib.sha256).hexdigest()


def encode_params(params: Mapping[str, object]) -> str:
    """URL-encode parameters in insertion order, dropping None; booleans as Binance spells them."""
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        items.append((key, text))
    return urlencode(items)


def signed_query(params: Mapping[str, object], secret: SecretStr | str, *, timestamp_ms: int,
                 recv_window_ms: int = 5000) -> str:
    """The full query string for a SIGNED call: params, ``recvWindow``, ``timestamp``, ``signature``."""
    query = encode_params({**params, "recvWindow": recv_window_ms, "timestamp": timestamp_ms})
    return f"{query}&signature={sign(query, secret)}"


def verify(query_string: str, secret: SecretStr | str) -> bool:
    """Server side: check that the trailing ``signature`` matches the rest of ``query_string``.

    Constant-time compare so the simulator is a fair model of a server (no timing oracle)."""
    head, sep, signature = query_string.rpartition("&signature=")
    if not sep:
        if query_string.startswith("signature="):
            head, signature = "", query_string[len("signature="):]
        else:
            return False
    return hmac.compare_digest(sign(head, secret), signature)

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tradingbot_agents.exchange import ExchangeClient
from tradingbot_agents.exchange.signing import sign, signed_query, verify

# Binance USDⓈ-M futures docs, "SIGNED Endpoint Examples for POST /fapi/v1/order".
DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
DOC_QUERY = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
             "&timestamp=1591702613943")
DOC_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_signature_matches_binance_documented_example() -> None:
    assert sign(DOC_QUERY, SecretStr(DOC_SECRET)) == DOC_SIGNATURE


def test_signed_query_builds_the_documented_string() -> None:
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": 1, "price": 9000,
              "timeInForce": "GTC"}
    query = signed_query(params, SecretStr(DOC_SECRET), timestamp_ms=1591702613943, recv_window_ms=5000)
    assert query == f"{DOC_QUERY}&signature={DOC_SIGNATURE}"
    assert verify(query, DOC_SECRET)
    assert not verify(query.replace("price=9000", "price=9001"), DOC_SECRET)
    assert not verify(query, "another-secret")


def test_client_repr_never_shows_credentials() -> None:
    c = ExchangeClient("http://127.0.0.1:9", api_key=SecretStr("my-key-123"), api_secret=SecretStr(DOC_SECRET))
    text = repr(c) + repr(vars(c))
    assert "my-key-123" not in text
    assert DOC_SECRET not in text


@pytest.mark.parametrize("query", ["", "signature=abc", "a=1"])
def test_verify_rejects_garbage(query: str) -> None:
    assert verify(query, DOC_SECRET) is False

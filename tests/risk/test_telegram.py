"""The Telegram client against a local server replaying the recorded Bot API answer.

The ok answer is the recorded ``sendMessage_ok.json`` (see data/payloads/telegram/README.md). No
429 was ever found recorded, so the flood-control answer is built from the documented shape
(core.telegram.org/bots/api, ``ResponseParameters.retry_after``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from tradingbot_agents.risk.telegram import TelegramClient, TelegramError

PAYLOADS = Path(__file__).resolve().parents[2] / "data" / "payloads" / "telegram"
TOKEN = "123456:AAE-secret-token-never-logged"
PATH = f"/bot{TOKEN}/sendMessage"
FLOOD = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
         "parameters": {"retry_after": 1}}


def recorded(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture
def client(httpserver: HTTPServer) -> TelegramClient:
    return TelegramClient(SecretStr(TOKEN), "123456789", api_url=httpserver.url_for("/"))


async def test_send_message_posts_chat_and_text_and_reads_the_recorded_answer(
        httpserver: HTTPServer, client: TelegramClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(PATH, method="POST").respond_with_json(recorded("sendMessage_ok.json"))
    response = await client.send_message("VaR over limit")
    await client.aclose()
    assert response.ok and response.result["message_id"] == 40
    assert response.result["chat"]["id"] == 123456789
    (request, _), = httpserver.log
    assert request.get_json() == {"chat_id": "123456789", "text": "VaR over limit"}
    assert client.sent == 1
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]  # not the stand-in server
    assert not [line for line in ours if TOKEN in line]
    assert any("/bot<redacted>/sendMessage" in line for line in ours)  # httpx logged it, redacted


async def test_flood_control_waits_retry_after_then_succeeds(httpserver: HTTPServer, client: TelegramClient) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(FLOOD, status=429)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(recorded("sendMessage_ok.json"))
    started = time.monotonic()
    response = await client.send_message("drawdown")
    elapsed = time.monotonic() - started
    await client.aclose()
    assert response.ok
    assert elapsed >= 1.0  # waited what Telegram asked
    assert len(httpserver.log) == 2 and client.rate_limited == 1


async def test_errors_carry_no_token(httpserver: HTTPServer, client: TelegramClient) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, status=400)
    with pytest.raises(TelegramError) as info:
        await client.send_message("x")
    assert info.value.error_code == 400 and "chat not found" in str(info.value)
    assert TOKEN not in str(info.value)
    await client.aclose()
    unreachable = TelegramClient(SecretStr(TOKEN), "1", api_url="http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(TelegramError) as info:
        await unreachable.send_message("x")
    await unreachable.aclose()
    assert "unreachable" in str(info.value) and TOKEN not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__

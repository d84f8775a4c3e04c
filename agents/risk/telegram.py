"""A small Telegram Bot API client: ``sendMessage`` over httpx, nothing more.

Why not a Telegram library: one endpoint is needed, and owning the client keeps two promises easy
to check. The bot token is part of the URL (``/bot<token>/sendMessage``), so:

* it never appears in our logs or exceptions: errors are re-raised without the URL, and a filter
  on the ``httpx``/``httpcore`` loggers redacts it from their request lines;
* flood control is honoured: ``{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}``
  means wait N seconds and retry (hammering on earns longer bans), up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

log = logging.getLogger(__name__)

TELEGRAM_API_URL = "https://api.telegram.org"
MAX_MESSAGE_CHARS = 4096  # the Bot API's limit for a message text


class TelegramError(Exception):
    """sendMessage failed (Telegram refused it, or could not be reached). Carries no token."""

    def __init__(self, message: str, *, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class ResponseParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    retry_after: float | None = None
    migrate_to_chat_id: int | None = None


class TelegramResponse(BaseModel):
    """The Bot API envelope: ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", …}``."""

    model_config = ConfigDict(extra="ignore")
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str = ""
    parameters: ResponseParameters | None = None


class _RedactToken(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token in record.getMessage():
            record.msg = record.getMessage().replace(self.token, "<redacted>")
            record.args = None
        return True


class TelegramClient:
    def __init__(self, token: SecretStr, chat_id: str, *, api_url: str = TELEGRAM_API_URL,
                 timeout_s: float = 10.0, max_attempts: int = 3, max_retry_after_s: float = 60.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self._token = token
        self.chat_id = chat_id
        self.api_url = api_url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_retry_after_s = max_retry_after_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self.sent = 0
        self.rate_limited = 0
        self._filter = _RedactToken(token.get_secret_value())
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._filter)

    async def send_message(self, text: str) -> TelegramResponse:
        """Send ``text`` to the configured chat; waits out 429s. Raises :class:`TelegramError`."""
        url = f"{self.api_url}/bot{self._token.get_secret_value()}/sendMessage"
        payload = {"chat_id": self.chat_id, "text": text[:MAX_MESSAGE_CHARS]}
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self._client.post(url, json=payload)
            except httpx.HTTPError as exc:
                raise TelegramError(f"Telegram unreachable: {type(exc).__name__}") from None
            try:
                body = TelegramResponse.model_validate(response.json())
            except ValueError:
                raise TelegramError(f"Telegram answered HTTP {response.status_code} without a Bot API body",
                                    error_code=response.status_code) from None
            if body.ok:
                self.sent += 1
                return body
            retry_after = body.parameters.retry_after if body.parameters else None
            if body.error_code == 429 and retry_after is not None and attempt < self.max_attempts:
                self.rate_limited += 1
                wait = min(retry_after, self.max_retry_after_s)
                log.warning("Telegram flood control: retrying in %.1fs (attempt %d/%d)", wait, attempt,
                            self.max_attempts)
                await asyncio.sleep(wait)
                continue
            raise TelegramError(f"Telegram refused sendMessage: {body.error_code} {body.description}",
                                error_code=body.error_code)
        raise TelegramError("Telegram sendMessage gave up after repeated flood control", error_code=429)

    async def aclose(self) -> None:
        await self._client.aclose()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._filter)

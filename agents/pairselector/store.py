"""The PAIRS KV bucket: the current active list for late joiners (writer: selector; readers: workers)."""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.js.kv import KeyValue

from tradingbot_agents.messages import ActivePairs

ACTIVE_KEY = "active"


async def open_pairs_bucket(js: Any, bucket: str) -> KeyValue:
    """Latest value only, no TTL (the list stays valid until the selector replaces it); creating
    the bucket is idempotent, so whichever agent starts first creates it."""
    try:
        return await js.create_key_value(bucket=bucket, history=1)
    except nats.js.errors.BadRequestError:
        return await js.key_value(bucket)


async def read_active_pairs(kv: KeyValue) -> ActivePairs | None:
    try:
        entry = await kv.get(ACTIVE_KEY)
    except nats.js.errors.KeyNotFoundError:
        return None
    return ActivePairs.model_validate_json(entry.value) if entry.value else None

"""One fetch round: every source in parallel, each inside its own time budget.

Why a per-source budget around the whole source (not only httpx's per-request timeout): a source
with several targets, a slow token endpoint or a trickling body must still end on time, so a round
never lasts longer than the slowest source's ``timeout_s``, and a fast source's texts are never held
back by a slow one. Bounded concurrency (``max_concurrency`` requests at once, over all sources)
keeps a long target list from opening dozens of connections; time spent queueing for a slot counts
against the source's own budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from tradingbot_agents.sentiment.sources import Source


@dataclass
class SourceOutcome:
    name: str
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def produced(self) -> bool:
        return bool(self.texts)


async def fetch_source(source: Source, http: httpx.AsyncClient, slots: asyncio.Semaphore) -> SourceOutcome:
    """Never raises (except cancellation): every failure becomes an error line of the outcome."""
    started = time.monotonic()
    outcome = SourceOutcome(source.name)
    try:
        result = await asyncio.wait_for(source.fetch(http, slots), source.timeout_s)
        outcome.texts, outcome.errors = result.texts, result.errors
    except TimeoutError:
        outcome.errors = [f"timeout after {source.timeout_s:g}s"]
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in one source must not take the round down
        outcome.errors = [f"{exc.__class__.__name__}: {exc}"]
    outcome.seconds = time.monotonic() - started
    return outcome


async def fetch_all(sources: Sequence[Source], http: httpx.AsyncClient, max_concurrency: int) -> list[SourceOutcome]:
    slots = asyncio.Semaphore(max_concurrency)
    return list(await asyncio.gather(*(fetch_source(s, http, slots) for s in sources)))

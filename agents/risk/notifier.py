"""Delivering alerts: durably on JetStream first, then to Telegram in the background.

JetStream is the record (the coordinator and any dashboard read the ALERTS stream); Telegram is a
courtesy copy for humans. So Telegram runs off the risk agent's hot path, behind a bounded queue:
Telegram being slow, rate-limited or down can delay or drop a chat message, never a risk check,
and its failures go to logs and metrics (operational noise), never become alerts themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter

from tradingbot_agents.bus import Bus
from tradingbot_agents.messages import Alert, Subjects
from tradingbot_agents.risk.alerts import AlertCandidate, AlertGate
from tradingbot_agents.risk.telegram import TelegramClient, TelegramError

log = logging.getLogger(__name__)


class AlertNotifier:
    def __init__(self, bus: Bus, subjects: Subjects, gate: AlertGate, *, telegram: TelegramClient | None,
                 registry: CollectorRegistry, queue_size: int = 100) -> None:
        self.bus = bus
        self.subjects = subjects
        self.gate = gate
        self.telegram = telegram
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self.alerts_total = Counter("tradingbot_risk_alerts", "Risk alerts raised (after cooldown)", ["kind"],
                                    registry=registry)
        self.telegram_total = Counter("tradingbot_risk_telegram_messages", "Telegram deliveries by outcome",
                                      ["outcome"], registry=registry)
        self.raised = 0

    async def raise_alerts(self, candidates: list[AlertCandidate]) -> list[Alert]:
        """Publish every candidate the gate admits; returns the alerts that went out."""
        sent: list[Alert] = []
        for candidate in candidates:
            if not self.gate.admit(candidate.kind, candidate.subject):
                continue
            now = time.time()
            alert = Alert(alert_id=f"{candidate.kind}.{candidate.subject}.{int(now * 1000)}", kind=candidate.kind,
                          subject=candidate.subject, severity=candidate.severity, message=candidate.message,
                          created_at=now, data=candidate.data)
            try:
                await self.bus.publish_durable(self.subjects.alerts, alert, msg_id=alert.alert_id)
            except Exception:
                # Not recorded, so not sent: let the next round try again instead of muting it.
                self.gate.forget(candidate.kind, candidate.subject)
                raise
            self.raised += 1
            self.alerts_total.labels(candidate.kind).inc()
            log.warning("alert %s/%s: %s", alert.kind, alert.subject, alert.message)
            sent.append(alert)
            if self.telegram is not None:
                if self._queue.full():
                    self._queue.get_nowait()
                    self.telegram_total.labels("dropped").inc()
                self._queue.put_nowait(alert)
        return sent

    def text(self, alert: Alert) -> str:
        bot = f"{self.subjects.identity.namespace}/{self.subjects.identity.name}"
        return f"[{alert.severity.upper()}] tradingbot {bot}: {alert.message}"

    async def run(self) -> None:
        """Deliver queued alerts to Telegram one at a time, until cancelled."""
        if self.telegram is None:
            await asyncio.Event().wait()
            return
        while True:
            alert = await self._queue.get()
            try:
                await self.telegram.send_message(self.text(alert))
                self.telegram_total.labels("sent").inc()
            except TelegramError as exc:
                self.telegram_total.labels("failed").inc()
                log.warning("alert %s not delivered to Telegram: %s", alert.alert_id, exc)

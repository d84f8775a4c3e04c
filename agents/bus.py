"""A thin typed layer over nats-py.

What it adds to the raw client, and why:

* typed messages: publish a pydantic model, receive a validated one; a message that is not JSON or
  does not fit the schema is dropped and counted (``tradingbot_bus_messages_dropped_total``), and
  a handler that raises is logged and counted; neither ever kills the agent;
* JetStream for what must not be lost: streams created idempotently, publishes carry a
  ``Nats-Msg-Id`` so the server de-duplicates retries, durable pull consumers ack only after the
  handler succeeded (at-least-once), and a bounded memory of handled ids drops redeliveries of a
  message already handled in this process;
* connect with exponential backoff until stopped (nats-py only reconnects after a first success),
  then nats-py's own reconnects, counted;
* a queue depth (pending + in-flight) and a message rate for the heartbeat's load report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from pydantic import BaseModel, ValidationError

from tradingbot_agents.config import NatsSettings
from tradingbot_agents.messages import StreamSpec
from tradingbot_agents.metrics import BusMetrics

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
Handler = Callable[[M, Msg], Awaitable[None]]

MSG_ID_HEADER = "Nats-Msg-Id"


class BusError(Exception):
    pass


class RequestTimeout(BusError):
    """No reply in time: the responder is down or overloaded."""


class BadReply(BusError):
    """A reply arrived but did not fit the expected model (the responder sent an error or junk)."""


class _SeenIds:
    """Bounded memory of handled message ids: a redelivered message already handled is dropped."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def seen(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def add(self, msg_id: str) -> None:
        self._ids[msg_id] = None
        self._ids.move_to_end(msg_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


def _decode(model: type[M], data: bytes) -> tuple[M | None, str]:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None, "not_json"
    try:
        return model.model_validate(raw), ""
    except ValidationError:
        return None, "schema"


class Bus:
    def __init__(self, settings: NatsSettings, *, name: str, metrics: BusMetrics) -> None:
        self.settings = settings
        self.name = name
        self.metrics = metrics
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._subs: list[Subscription] = []
        self._consumer_tasks: list[asyncio.Task[None]] = []
        self._pull_subs: list[JetStreamContext.PullSubscription] = []
        self._in_flight = 0
        self._received = 0
        self._seen = _SeenIds()
        self._closing = False

    # -- connection ---------------------------------------------------------------------------
    async def connect_once(self) -> None:
        """One connection attempt; raises if NATS is not reachable (for short-lived CLI calls)."""
        self._nc = await nats.connect(
            self.settings.url,
            name=self.name,
            connect_timeout=self.settings.connect_timeout,
            reconnect_time_wait=self.settings.reconnect_wait,
            # nats-py retries a first connect forever unless attempts are bounded, which would make
            # the agent deaf to SIGTERM; so the first attempt fails fast (our loop backs off) and
            # unbounded reconnects are switched on once connected.
            max_reconnect_attempts=1,
            allow_reconnect=False,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            error_cb=self._on_error,
        )
        self._nc.options["allow_reconnect"] = True
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream()
        self.metrics.connected.set(1)

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Connect, retrying with jittered exponential backoff until connected or ``stop`` is set."""
        delay = self.settings.reconnect_wait
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.connect_once()
                log.info("connected to NATS at %s", self.settings.url)
                return
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                if stop is not None and stop.is_set():
                    raise BusError("stopped before NATS was reachable") from exc
                log.warning("NATS not reachable (attempt %d: %s); retrying in %.1fs", attempt, exc, delay)
                if stop is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    if stop.is_set():
                        raise BusError("stopped before NATS was reachable") from exc
                else:
                    await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.max_reconnect_wait) * random.uniform(0.8, 1.2)

    async def _on_disconnected(self) -> None:
        self.metrics.connected.set(0)
        if not self._closing:
            log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self.metrics.connected.set(1)
        self.metrics.reconnects.inc()
        log.info("reconnected to NATS")

    async def _on_error(self, exc: Exception) -> None:
        if not self._closing:
            log.debug("NATS client error: %s", exc)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> NATS:
        if self._nc is None:
            raise BusError("bus is not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusError("bus is not connected")
        return self._js

    # -- load ---------------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        pending = sum(sub.pending_msgs for sub in self._subs)
        return pending + self._in_flight

    @property
    def received_total(self) -> int:
        return self._received

    # -- core NATS ----------------------------------------------------------------------------
    async def publish(self, subject: str, message: BaseModel, *, headers: dict[str, str] | None = None) -> None:
        await self.nc.publish(subject, message.model_dump_json().encode(), headers=headers)
        self.metrics.published.labels("core").inc()

    async def subscribe(
        self, subject: str, model: type[M], handler: Handler[M], *, queue: str = ""
    ) -> Subscription:
        """Deliver validated ``model`` instances to ``handler``; a queue group shares the work."""
        label = subject

        async def callback(msg: Msg) -> None:
            await self._dispatch(label, model, handler, msg)

        sub = await self.nc.subscribe(subject, queue=queue, cb=callback)
        self._subs.append(sub)
        # A round trip makes the subscription active on the server before we return, so a
        # message published right after (from any connection) is not missed.
        await self.nc.flush()
        return sub

    async def _dispatch(self, label: str, model: type[M], handler: Handler[M], msg: Msg) -> bool:
        """Decode and run the handler. Returns True if the message was handled or was junk (either
        way it must not come back), False if the handler raised (worth redelivering)."""
        self._received += 1
        value, reason = _decode(model, msg.data)
        if value is None:
            self.metrics.dropped.labels(label, reason).inc()
            log.warning("dropped a message on %s: %s", msg.subject, reason)
            return True
        self.metrics.received.labels(label).inc()
        self._in_flight += 1
        try:
            await handler(value, msg)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            self.metrics.handler_errors.labels(label).inc()
            log.exception("handler for %s failed", msg.subject)
            return False
        finally:
            self._in_flight -= 1

    async def request(
        self, subject: str, message: BaseModel, reply_model: type[R], *, timeout: float | None = None
    ) -> R:
        timeout = timeout or self.settings.request_timeout
        started = time.perf_counter()
        try:
            reply = await self.nc.request(subject, message.model_dump_json().encode(), timeout=timeout)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            self.metrics.request_timeouts.inc()
            raise RequestTimeout(f"no reply on {subject} within {timeout:.2f}s") from exc
        self.metrics.request_seconds.observe(time.perf_counter() - started)
        value, reason = _decode(reply_model, reply.data)
        if value is None:
            raise BadReply(f"reply on {subject} is {reason}: {reply.data[:200]!r}")
        return value

    async def serve(
        self,
        subject: str,
        model: type[M],
        responder: Callable[[M], Awaitable[BaseModel | bytes]],
        *,
        queue: str = "",
    ) -> Subscription:
        """Answer requests on ``subject`` with ``responder``'s model, or with bytes it already
        encoded (a responder that caches its encoded answers skips re-encoding a hot reply)."""

        async def handler(value: M, msg: Msg) -> None:
            reply = await responder(value)
            if msg.reply:
                await msg.respond(reply if isinstance(reply, bytes) else reply.model_dump_json().encode())

        return await self.subscribe(subject, model, handler, queue=queue)

    # -- JetStream ----------------------------------------------------------------------------
    async def ensure_stream(self, spec: StreamSpec) -> None:
        """Create the stream, or update it if it exists with another configuration."""
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            max_age=spec.max_age_s,
            duplicate_window=spec.duplicate_window_s,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self.js.update_stream(config)

    async def publish_durable(self, subject: str, message: BaseModel, *, msg_id: str) -> bool:
        """Publish to JetStream with a de-duplication id. Returns False if the server already had a
        message with that id (a retry of something already stored)."""
        ack = await self.js.publish(subject, message.model_dump_json().encode(),
                                    headers={MSG_ID_HEADER: msg_id})
        self.metrics.published.labels("jetstream").inc()
        return not ack.duplicate

    async def consume(
        self,
        stream: str,
        durable: str,
        subject: str,
        model: type[M],
        handler: Handler[M],
        *,
        batch: int = 32,
        ack_wait_s: float = 30.0,
        max_deliver: int = 5,
    ) -> None:
        """Start a durable pull consumer in the background.

        The consumer's position lives on the server, so a restarted agent resumes after the last
        acknowledged message: nothing published while it was down is lost, nothing acked is
        processed again. A handler failure naks with a delay; junk is terminated (never retried).
        """
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait_s,
            max_deliver=max_deliver,
            filter_subject=subject,
        )
        psub = await self.js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        self._pull_subs.append(psub)
        label = f"{stream}/{durable}"

        async def loop() -> None:
            while True:
                try:
                    msgs = await psub.fetch(batch, timeout=1.0)
                except nats.errors.TimeoutError:
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
                    return
                except nats.errors.Error as exc:
                    log.warning("consumer %s fetch failed: %s", label, exc)
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    await self._handle_durable(label, model, handler, msg)

        self._consumer_tasks.append(asyncio.create_task(loop(), name=f"consumer:{label}"))

    async def _handle_durable(self, label: str, model: type[M], handler: Handler[M], msg: Msg) -> None:
        msg_id = (msg.headers or {}).get(MSG_ID_HEADER)
        if msg_id and self._seen.seen(msg_id):
            self.metrics.dropped.labels(label, "duplicate").inc()
            await msg.ack()
            return
        value, reason = _decode(model, msg.data)
        if value is None:
            self.metrics.dropped.labels(label, reason).inc()
            log.warning("terminated a junk message on %s: %s", msg.subject, reason)
            await msg.term()
            return
        ok = await self._dispatch(label, model, handler, msg)
        if ok:
            if msg_id:
                self._seen.add(msg_id)
            await msg.ack()
        else:
            await msg.nak(delay=1.0)

    # -- shutdown -----------------------------------------------------------------------------
    async def drain(self, timeout: float) -> None:
        """Stop taking new messages, let handlers in flight finish, flush, close."""
        self._closing = True
        for task in self._consumer_tasks:
            task.cancel()
        if self._consumer_tasks:
            await asyncio.gather(*self._consumer_tasks, return_exceptions=True)
        if self._nc is None or self._nc.is_closed:
            return
        # nats-py's fetch leaves status messages on a pull subscription's queue without marking them
        # done, and the connection's drain then waits for them until its timeout: unsubscribe the
        # pull subscriptions first (the durable consumers keep their position on the server).
        for psub in self._pull_subs:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
        self._pull_subs.clear()
        try:
            await asyncio.wait_for(self._nc.drain(), timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("NATS drain did not finish cleanly: %s", exc)
            await self.close()
        self.metrics.connected.set(0)

    async def close(self) -> None:
        self._closing = True
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self.metrics.connected.set(0)


__all__ = ["BadReply", "Bus", "BusError", "RequestTimeout"]



"""Receivers: a notification to the alerts topic, a webhook, a real Alertmanager or the log; never raises."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog

from kestrel.alerting.config import Config, Receiver
from kestrel.alerting.payload import alert_record, alertmanager_alerts, webhook_payload
from kestrel.alerting.routing import Notification
from kestrel.common.errors import KestrelError
from kestrel.common.kafka.producer import OutRecord
from kestrel.common.retry import retrying
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings

log = structlog.get_logger()

ALERTS_TOPIC = "kestrel.alerts.v1"
SOURCE = "kestrel-alerting"
USER_AGENT = "Kestrel-Alerting/0.1"
NOTIFICATION_HEADER = "X-Kestrel-Notification-Id"
"""Sent with every webhook call: the same notification retried carries the same id, so a receiver can drop
duplicates (Alertmanager's peers cannot tell a retry from a new notification, prometheus/alertmanager#4108)."""
BACKOFF_MAX_S = 30.0
DEADLINE_S = 120.0
"""Total time one receiver gets for a notification, retries included. Alertmanager keeps retrying a failing
webhook about 200 times in ten minutes (prometheus/alertmanager#2286); we give up sooner and use the fallback."""
BUILTIN_FALLBACK = "log+topic"


class ReceiverError(KestrelError):
    """One delivery attempt failed; `retryable` is False for answers that another try cannot change (4xx)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one notification: delivered by its receiver, or by the fallback after `attempts` failed."""

    receiver: str
    delivered: bool
    attempts: int
    fallback: str | None = None
    """The receiver (or `log+topic`) that took the notification after the receiver kept failing."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Delivered by its own receiver (the app's metrics count the rest as failed)."""
        return self.delivered


class Delivery(Protocol):
    async def deliver(self, notification: Notification) -> DeliveryResult: ...


class RecordSink(Protocol):
    """What the topic receiver needs of a producer (kestrel.common.kafka.Producer has it)."""

    async def send_many(self, records: Iterable[OutRecord]) -> Any: ...


Send = Callable[[Notification], Awaitable[None]]


class Receivers:
    """Every receiver of a config, by name; `deliver` routes a notification to `notification.receiver`.

    Each receiver gets `max_attempts` tries with exponential backoff from `backoff_s`, each try at most
    `timeout_s`, all tries at most `deadline_s`; then its `fallback` (or the config's `fallback_receiver`)
    gets it, and without one the log and the alerts topic do. `close()` ends the HTTP session.
    """

    def __init__(
        self,
        config: Config,
        senders: dict[str, Send],
        topic: Send,
        deadline_s: float = DEADLINE_S,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._config, self._senders, self._topic = config, senders, topic
        self._deadline_s, self._on_close = deadline_s, on_close

    async def deliver(self, notification: Notification) -> DeliveryResult:
        receiver = self._config.receivers.get(notification.receiver)
        if receiver is None:
            log.error("alert_receiver_unknown", receiver=notification.receiver, notification=notification.id)
            return await self._fall_back(notification.receiver, None, notification, 0, "unknown receiver")
        attempts, error = await self._attempt(receiver, notification)
        if error is None:
            return DeliveryResult(receiver.name, True, attempts)
        log.error(
            "alert_receiver_failed",
            receiver=receiver.name,
            notification=notification.id,
            group_key=notification.group_key,
            attempts=attempts,
            error=error,
        )
        return await self._fall_back(receiver.name, receiver.fallback, notification, attempts, error)

    async def close(self) -> None:
        if self._on_close is not None:
            await self._on_close()

    async def _attempt(self, receiver: Receiver, notification: Notification) -> tuple[int, str | None]:
        """(attempts made, None or the last error)."""
        send, attempts = self._senders[receiver.name], 0
        policy = retrying(
            receiver.backoff_s,
            BACKOFF_MAX_S,
            attempts=max(1, receiver.max_attempts),
            when=lambda exc: isinstance(exc, ReceiverError) and exc.retryable,
        )
        try:
            async with asyncio.timeout(self._deadline_s):
                async for attempt in policy:
                    with attempt:
                        attempts += 1
                        await _within(receiver.timeout_s, send(notification))
        except ReceiverError as exc:
            return attempts, str(exc)
        except TimeoutError:
            return attempts, f"gave up after the {self._deadline_s:g} s deadline"
        return attempts, None

    async def _fall_back(
        self, name: str, own: str | None, notification: Notification, attempts: int, error: str
    ) -> DeliveryResult:
        """The fallback chain (config.py refuses loops), then the log and the alerts topic, which need no peer."""
        fallback, tried = own or self._config.fallback_receiver, {name}
        while fallback and fallback not in tried and fallback in self._config.receivers:
            receiver = self._config.receivers[fallback]
            _, fallback_error = await self._attempt(receiver, notification)
            if fallback_error is None:
                return DeliveryResult(name, False, attempts, fallback, error)
            log.error("alert_fallback_failed", receiver=fallback, notification=notification.id, error=fallback_error)
            tried.add(fallback)
            fallback = receiver.fallback
        await log_receiver(notification)
        try:
            await self._topic(notification)
        except Exception as exc:  # noqa: BLE001 - the log line above already holds the notification
            log.error("alert_fallback_topic_failed", notification=notification.id, error=str(exc))
        return DeliveryResult(name, False, attempts, BUILTIN_FALLBACK, error)


async def _within(timeout_s: float, call: Awaitable[None]) -> None:
    try:
        async with asyncio.timeout(timeout_s if timeout_s > 0 else None):
            await call
    except TimeoutError as exc:
        raise ReceiverError(f"no answer within {timeout_s:g} s") from exc


def topic_receiver(producer: RecordSink, topics: Topics) -> Send:
    """Each alert of the notification as a kestrel.alerts.v1 record, keyed by fingerprint."""
    binding = topics.bind(ALERTS_TOPIC)
    serde = topics.serde(binding)

    async def send(notification: Notification) -> None:
        headers = [("notification_id", notification.id.encode())]
        records = [
            OutRecord(binding.name, serde.serialize(alert_record(a, SOURCE)), a.fingerprint.encode(), headers)
            for a in notification.alerts
        ]
        try:
            await producer.send_many(records)
        except KestrelError as exc:
            raise ReceiverError(f"alerts topic: {exc}") from exc

    return send


def webhook_receiver(session: Callable[[], aiohttp.ClientSession], url: str, external_url: str) -> Send:
    """POST the Alertmanager v4 webhook payload."""

    async def send(notification: Notification) -> None:
        body = webhook_payload(notification, external_url)
        await post_json(session(), url, body, {NOTIFICATION_HEADER: notification.id})

    return send


def alertmanager_receiver(session: Callable[[], aiohttp.ClientSession], url: str, generator_url: str) -> Send:
    """POST the alerts to a real Alertmanager's /api/v2/alerts (it groups, silences and routes them itself).

    Firing alerts go without endsAt, so Alertmanager resolves them after its resolve_timeout (5m) unless they
    come again: route an alertmanager receiver with a repeat_interval well below that (docs/alerting.md)."""
    endpoint = url.rstrip("/") + "/api/v2/alerts"

    async def send(notification: Notification) -> None:
        await post_json(session(), endpoint, alertmanager_alerts(notification.alerts, generator_url), {})

    return send


async def log_receiver(notification: Notification) -> None:
    """The receiver that cannot fail: the whole notification on one log line."""
    log.warning(
        "alert_notification",
        receiver=notification.receiver,
        status=notification.status,
        group_key=notification.group_key,
        notification=notification.id,
        alerts=[{"fingerprint": a.fingerprint, "status": a.state, "labels": a.labels} for a in notification.alerts],
    )


async def post_json(session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> None:
    """One POST; 5xx, 408, 429 and connection errors are worth another try, other 4xx are not."""
    data = json.dumps(body, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        async with session.post(url, data=data, headers=all_headers) as response:
            if response.status < 300:
                return
            text = (await response.text())[:200]
    except aiohttp.ClientError as exc:
        raise ReceiverError(f"{url}: {type(exc).__name__}: {exc}") from exc
    retryable = response.status >= 500 or response.status in (408, 429)
    raise ReceiverError(f"{url} answered {response.status}: {text}", retryable=retryable)


class _Session:
    """One aiohttp session for every HTTP receiver, created on first use (it needs the running loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def delivery_for(
    config: Config,
    settings: KafkaSettings,
    producer: RecordSink,
    *,
    topics: Topics | None = None,
    deadline_s: float = DEADLINE_S,
) -> Receivers:
    """The receivers of `config` (links in payloads point at its `external_url`); the topic receiver writes
    through `producer` with the catalogue's serde (pass the service's started `topics` to share its registry)."""
    topics = topics if topics is not None else Topics(settings)
    external_url = config.external_url
    session = _Session()
    topic = topic_receiver(producer, topics)
    senders = {name: _sender(r, topic, session, external_url) for name, r in config.receivers.items()}
    return Receivers(config, senders, topic, deadline_s, on_close=session.close)


def _sender(receiver: Receiver, topic: Send, session: _Session, external_url: str) -> Send:
    if receiver.kind == "topic":
        return topic
    if receiver.kind == "log":
        return log_receiver
    if receiver.kind == "webhook" and receiver.url:
        return webhook_receiver(session, receiver.url, external_url)
    if receiver.kind == "alertmanager" and receiver.url:
        return alertmanager_receiver(session, receiver.url, external_url)
    raise ReceiverError(f"receiver {receiver.name!r}: kind {receiver.kind!r} needs a url", retryable=False)

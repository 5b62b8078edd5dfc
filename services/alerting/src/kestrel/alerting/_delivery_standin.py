"""STAND-IN for alert-edge's receivers.py (`delivery_for`), to be replaced when it lands: a webhook POST of the
v4 payload with a few retries, and kestrel.alerts.v1 records; no fallback, no Alertmanager push."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from kestrel.alerting.config import Config
from kestrel.alerting.payload import alert_record, webhook_payload
from kestrel.alerting.routing import Notification
from kestrel.alerting.settings import AlertingSettings
from kestrel.common.kafka import OutRecord
from kestrel.common.runtime.bindings import Topics

log = structlog.get_logger()


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    fallback: str | None = None


class StandinDelivery:
    def __init__(self, config: Config, settings: AlertingSettings, producer: Any) -> None:
        self._config, self._settings, self._producer = config, settings, producer
        topics = Topics(settings)
        self._alerts = topics.bind(settings.alerts_topic)
        self._serde = topics.serde(self._alerts)

    async def deliver(self, notification: Notification) -> DeliveryResult:
        receiver = self._config.receivers[notification.receiver]
        if receiver.kind == "webhook":
            return await self._webhook(receiver, notification)
        if receiver.kind == "topic":
            records = [alert_record(a, "kestrel-alerting") for a in notification.alerts]
            await self._producer.send_many(
                [OutRecord(self._alerts.name, self._serde.serialize(r), r["fingerprint"].encode()) for r in records]
            )
        else:
            log.warning("alert_notification", notification=notification.id, status=notification.status)
        return DeliveryResult(ok=True)

    async def _webhook(self, receiver: Any, notification: Notification) -> DeliveryResult:
        body = webhook_payload(notification, self._config.external_url)
        timeout = aiohttp.ClientTimeout(total=receiver.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(receiver.max_attempts):
                try:
                    async with session.post(receiver.url, json=body) as response:
                        if response.status < 300:
                            return DeliveryResult(ok=True)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    log.warning("webhook_failed", receiver=receiver.name, attempt=attempt + 1, error=str(exc))
                await asyncio.sleep(receiver.backoff_s * 2**attempt)
        return DeliveryResult(ok=False)


def delivery_for(config: Config, settings: AlertingSettings, producer: Any) -> StandinDelivery:
    return StandinDelivery(config, settings, producer)

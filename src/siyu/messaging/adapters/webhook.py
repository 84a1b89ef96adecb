"""Outbound webhook: the message as JSON, POSTed and signed with HMAC-SHA256.

Headers: ``X-Siyu-Timestamp`` (Unix seconds), ``X-Siyu-Signature: sha256=<hex>`` over
``"{timestamp}.{body}"`` with ``SIYU_WEBHOOK_SECRET``, and ``X-Siyu-Delivery`` (the outbox id,
stable across retries: receivers dedupe by it, so this adapter is at-least-once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

from siyu.messaging.adapters import DELIVERED, FAILED, RETRY, Adapter, Outcome, Prepared, setting
from siyu.messaging.models import Channel, Reason

TIMEOUT = 10


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookAdapter(Adapter):
    channel = Channel.WEBHOOK
    at_least_once = True

    def send(self, messages: list[Prepared]) -> dict[int, Outcome]:
        secret = setting("SIYU_WEBHOOK_SECRET")
        return {m.id: self._one(m, secret) for m in messages}

    def _one(self, msg: Prepared, secret: str) -> Outcome:
        if not secret or not msg.webhook_url:
            return Outcome(FAILED, Reason.NOT_CONFIGURED, "SIYU_WEBHOOK_SECRET or the template's webhook URL is empty")
        body = json.dumps({
            "id": msg.id, "dedupe_key": msg.dedupe_key, "template": msg.template_code, "purpose": msg.purpose,
            "member": {"id": msg.member_id, "code": msg.member_code},
            "text": msg.rendered.text, "variables": msg.variables,
        }, ensure_ascii=False, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Siyu-Timestamp": timestamp,
                   "X-Siyu-Signature": sign(secret, timestamp, body), "X-Siyu-Delivery": str(msg.id)}
        try:
            response = requests.post(msg.webhook_url, data=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as error:
            return Outcome(RETRY, Reason.PROVIDER_ERROR, f"{type(error).__name__}: {error}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(DELIVERED, provider_id=response.headers.get("X-Request-Id", "")[:100])
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            return Outcome(RETRY, Reason.PROVIDER_ERROR, detail)
        return Outcome(FAILED, Reason.PROVIDER_REJECTED, detail)

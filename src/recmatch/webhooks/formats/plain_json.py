"""A generic JSON format for CRMs that take the payload as it is: no envelope, GitHub-style signature.

The body is the payload object alone; the event and delivery id travel in headers, and
`X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>` signs the exact body (no timestamp).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from recmatch.webhooks.formats import OutboxMessage, WebhookRequest

EVENT_HEADER = "X-Webhook-Event"
ID_HEADER = "X-Webhook-Id"
SIGNATURE_HEADER = "X-Webhook-Signature"


def signature(secret: str, body: bytes) -> str:
    """The X-Webhook-Signature value of BODY."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PlainJsonFormat:
    name = "plain-json"

    def request(self, *, message: OutboxMessage, secret: str, timestamp: int) -> WebhookRequest:
        body = json.dumps(dict(message.payload), separators=(",", ":"), ensure_ascii=False).encode()
        return WebhookRequest(body=body, headers={
            EVENT_HEADER: message.event,
            ID_HEADER: message.delivery_id,
            SIGNATURE_HEADER: signature(secret, body),
        })


FORMAT = PlainJsonFormat()

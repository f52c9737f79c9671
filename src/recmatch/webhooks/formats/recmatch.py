"""recmatch's own webhook format: an envelope around the payload, signed `t=<unix>,v1=<hex HMAC>` (docs/webhooks.md).
"""

from __future__ import annotations

import json
from typing import Any

from recmatch.webhooks.formats import OutboxMessage, WebhookRequest
from recmatch.webhooks.signing import SIGNATURE_HEADER, sign

EVENT_HEADER = "X-Recmatch-Event"
DELIVERY_HEADER = "X-Recmatch-Delivery"
ATTEMPT_HEADER = "X-Recmatch-Attempt"


def envelope(*, delivery_id: str, event: str, created_at: str, tenant_id: str, payload: dict[str, Any]) -> bytes:
    """The request body: the same bytes on every try, so a receiver can dedupe and verify it."""
    document = {"id": delivery_id, "event": event, "created_at": created_at, "tenant_id": tenant_id, "data": payload}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class RecmatchFormat:
    name = "recmatch"

    def request(self, *, message: OutboxMessage, secret: str, timestamp: int) -> WebhookRequest:
        body = envelope(delivery_id=message.delivery_id, event=message.event, created_at=message.created_at,
                        tenant_id=message.tenant_id, payload=dict(message.payload))
        return WebhookRequest(body=body, headers={
            EVENT_HEADER: message.event,
            DELIVERY_HEADER: message.delivery_id,
            ATTEMPT_HEADER: str(message.attempt),
            SIGNATURE_HEADER: sign(secret, body, timestamp),
        })


FORMAT = RecmatchFormat()

"""CRM webhook formats: how one outbox entry becomes an HTTP request (body, headers, signature).

A format is a module in this package that defines ``FORMAT``, an object with a ``name`` and a ``request`` method
(the ``WebhookFormat`` protocol). A tenant names its format (``webhook_format``, default ``recmatch``); adding a
CRM's format is one new module here, plus its tests. The worker chooses the target URL (the tenant's CRM or
messaging endpoint) and sends the request; a format only shapes it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

__all__ = ["DEFAULT_FORMAT", "OutboxMessage", "WebhookFormat", "WebhookRequest", "format_names", "webhook_format"]

DEFAULT_FORMAT = "recmatch"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """What is to be told: the same on every try of a delivery, but for the attempt number."""

    delivery_id: str
    event: str  # "prospect.saved", "profile.exported", "inmail.sent", "contact.shared"
    created_at: str
    tenant_id: str
    payload: Mapping[str, Any]
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """The body and headers of one POST (Content-Type apart)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class WebhookFormat(Protocol):
    name: str

    def request(self, *, message: OutboxMessage, secret: str, timestamp: int) -> WebhookRequest:
        """The request that delivers MESSAGE, signed with the tenant's SECRET at TIMESTAMP (unix seconds)."""
        ...


@cache
def _formats() -> dict[str, WebhookFormat]:
    found: dict[str, WebhookFormat] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        declared = getattr(module, "FORMAT", None)
        if declared is not None:
            found[declared.name] = declared
    return found


def format_names() -> list[str]:
    """The formats a tenant can choose, sorted."""
    return sorted(_formats())


def webhook_format(name: str | None) -> WebhookFormat:
    """The format called NAME (None: the default); KeyError names the known ones."""
    formats = _formats()
    try:
        return formats[name or DEFAULT_FORMAT]
    except KeyError:
        raise KeyError(f"no webhook format {name!r}; known: {', '.join(sorted(formats))}") from None

"""Webhook formats: each shapes one outbox entry as a signed request; a tenant chooses one by name."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recmatch.ops.cli import app
from recmatch.webhooks.formats import OutboxMessage, format_names, plain_json, webhook_format
from recmatch.webhooks.signing import verify

MESSAGE = OutboxMessage(delivery_id="d-1", event="prospect.saved", created_at="2026-12-01T10:00:00.000+00:00",
                        tenant_id="t-1", payload={"crm_pipeline_id": "p-1", "candidate": {"name": "Zoë"}}, attempt=2)


def test_the_formats_a_tenant_can_choose():
    assert format_names() == ["plain-json", "recmatch"]
    assert webhook_format(None).name == "recmatch"
    with pytest.raises(KeyError, match="no webhook format 'acme'; known: plain-json, recmatch"):
        webhook_format("acme")


def test_recmatch_format_wraps_the_payload_and_signs_it_with_a_timestamp():
    request = webhook_format("recmatch").request(message=MESSAGE, secret="s3cret", timestamp=1_764_000_000)
    assert json.loads(request.body) == {"id": "d-1", "event": "prospect.saved", "created_at": MESSAGE.created_at,
                                        "tenant_id": "t-1", "data": dict(MESSAGE.payload)}
    assert request.headers["X-Recmatch-Event"] == "prospect.saved"
    assert request.headers["X-Recmatch-Delivery"] == "d-1" and request.headers["X-Recmatch-Attempt"] == "2"
    assert verify("s3cret", request.body, request.headers["X-Recmatch-Signature"], now=1_764_000_010)
    assert not verify("other", request.body, request.headers["X-Recmatch-Signature"], now=1_764_000_010)


def test_plain_json_format_sends_the_bare_payload_with_a_body_signature():
    request = webhook_format("plain-json").request(message=MESSAGE, secret="s3cret", timestamp=1_764_000_000)
    assert json.loads(request.body) == dict(MESSAGE.payload)
    assert request.headers == {"X-Webhook-Event": "prospect.saved", "X-Webhook-Id": "d-1",
                               "X-Webhook-Signature": plain_json.signature("s3cret", request.body)}
    assert request.headers["X-Webhook-Signature"].startswith("sha256=")
    assert plain_json.signature("s3cret", request.body + b" ") != request.headers["X-Webhook-Signature"]


def test_tenants_create_refuses_an_unknown_format_and_names_the_known_ones():
    result = CliRunner().invoke(app, ["tenants", "create", "--name", "Acme", "--webhook-format", "acme-crm"])
    assert result.exit_code == 2
    assert "plain-json" in result.output and "recmatch" in result.output

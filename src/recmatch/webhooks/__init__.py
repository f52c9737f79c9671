"""Deliveries to CRM and messaging webhooks: the outbox, the worker and signing."""

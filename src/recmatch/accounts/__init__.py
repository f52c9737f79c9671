"""Tenants, seats, API keys, feature gates and signed tokens."""

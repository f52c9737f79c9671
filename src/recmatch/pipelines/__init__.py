"""Pipelines synced from the CRM: the owner of the pipelines index."""

"""Recruiter actions (save, InMail, export, dismiss): recording, quotas and idempotency."""

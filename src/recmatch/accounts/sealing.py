"""Secrets at rest: webhook and signing secrets are stored encrypted with RECMATCH_SECRETS_KEY (Fernet).

A stored value reads `sealed:v1:<Fernet token>`; a value without that prefix is a plain one from before a key was
set, and still reads (it is sealed the next time it is written). Several comma-separated keys rotate: the first
seals, every one opens."""

from __future__ import annotations

import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from recmatch.core.config import get_settings
from recmatch.core.errors import RecmatchError

log = logging.getLogger("recmatch.accounts")

PREFIX = "sealed:v1:"


class SecretUnreadable(RecmatchError):
    """A stored secret was sealed with a key this process does not have."""

    status_code = 503


@lru_cache(maxsize=4)
def _box(keys: str | None) -> MultiFernet | None:
    if not keys:
        log.warning("RECMATCH_SECRETS_KEY is not set: webhook and signing secrets are stored in plain text")
        return None
    return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])


def _current() -> MultiFernet | None:
    key = get_settings().secrets_key
    return _box(key.get_secret_value() if key is not None else None)


def seal(value: str) -> str:
    """The stored form of a secret (plain when no key is configured)."""
    box = _current()
    return value if box is None else PREFIX + box.encrypt(value.encode()).decode()


def unseal(stored: str) -> str:
    """The secret behind its stored form."""
    if not stored.startswith(PREFIX):
        return stored
    box = _current()
    if box is None:
        raise SecretUnreadable("a stored secret is encrypted but RECMATCH_SECRETS_KEY is not set")
    try:
        return box.decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret is encrypted with a key RECMATCH_SECRETS_KEY does not hold") from None

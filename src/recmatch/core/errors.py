"""Domain errors: each knows its HTTP status; one handler renders them as {"type", "detail"}."""

from __future__ import annotations


class RecmatchError(Exception):
    """Base of every error recmatch reports to a caller."""

    status_code: int = 500

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after

    @property
    def type(self) -> str:
        return type(self).__name__


class InvalidInput(RecmatchError):
    status_code = 422


class NotAuthenticated(RecmatchError):
    status_code = 401


class NotPermitted(RecmatchError):
    status_code = 403


class NotFound(RecmatchError):
    status_code = 404


class Conflict(RecmatchError):
    status_code = 409


class LimitReached(RecmatchError):
    status_code = 429


class SearchUnavailable(RecmatchError):
    """Elasticsearch cannot be reached or is overloaded; the caller should retry later."""

    status_code = 503


class IncompatibleServer(RecmatchError):
    """The Elasticsearch server's major version does not match the client's."""

    status_code = 503


class ReindexFailed(RecmatchError):
    """A reindex stopped before the alias swap; the alias still serves the previous index."""

    status_code = 500

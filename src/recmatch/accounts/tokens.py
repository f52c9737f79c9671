"""Signed, expiring tokens: the framed widget's (one pipeline, one seat) and a candidate's contact-share link."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from elasticsearch import AsyncElasticsearch

from recmatch.accounts.sealing import seal, unseal
from recmatch.accounts.service import License, Seat
from recmatch.core.config import Settings
from recmatch.core.errors import NotAuthenticated
from recmatch.core.es import IndexNames, ignoring, map_es_errors
from recmatch.core.ids import server_secret_doc_id

ALGORITHM = "HS256"
WIDGET_AUDIENCE = "recmatch:widget"
SHARE_AUDIENCE = "recmatch:contact-share"


class TokenExpired(NotAuthenticated):
    """The token was genuine but has expired: reopen the widget from the CRM."""


async def server_secret(*, es: AsyncElasticsearch, names: IndexNames, settings: Settings) -> str:
    """RECMATCH_SECRET_KEY, else one secret kept in the cluster so every API process signs alike."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    index = names.accounts
    with map_es_errors("reading the signing secret"):
        found = await ignoring(es, 404).get(index=index, id=server_secret_doc_id())
        if not found.get("found"):
            await ignoring(es, 409).index(
                index=index, id=server_secret_doc_id(), op_type="create", refresh="wait_for",
                document={"kind": "server", "webhook_secret": seal(secrets.token_urlsafe(48)),
                          "created_at": datetime.now(UTC).isoformat()},
            )
            found = await es.get(index=index, id=server_secret_doc_id())
    return unseal(found["_source"]["webhook_secret"])


@dataclass(frozen=True)
class WidgetClaims:
    seat: Seat
    crm_pipeline_id: str
    expires_at: datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= datetime.now(UTC)


def mint_widget_token(*, secret: str, seat: Seat, crm_pipeline_id: str, ttl: timedelta) -> tuple[str, datetime]:
    """A token that lets the framed widget act for one seat on one pipeline, and nothing else."""
    expires_at = datetime.now(UTC) + ttl
    claims = {"aud": WIDGET_AUDIENCE, "ten": seat.tenant_id, "sub": seat.seat_id, "eml": seat.email,
              "lic": seat.license.value, "pip": crm_pipeline_id, "exp": expires_at}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at


def read_widget_token(*, secret: str, token: str, allow_expired: bool = False) -> WidgetClaims:
    """The claims of a genuine widget token (an expired one too when ALLOW_EXPIRED, to frame its error page)."""
    claims = _decode(secret=secret, token=token, audience=WIDGET_AUDIENCE, what="widget token",
                     verify_exp=not allow_expired)
    try:
        return WidgetClaims(seat=Seat(seat_id=claims["sub"], tenant_id=claims["ten"], email=claims["eml"],
                                      license=License(claims["lic"])),
                            crm_pipeline_id=claims["pip"], expires_at=datetime.fromtimestamp(claims["exp"], UTC))
    except (KeyError, ValueError):
        raise NotAuthenticated("this widget token is not valid") from None


@dataclass(frozen=True)
class ShareClaims:
    tenant_id: str
    crm_pipeline_id: str
    candidate_id: str
    delivery_id: str
    recruiter: str | None = None  # who wrote, for which company and role: the page the candidate opens says so
    company: str | None = None
    role: str | None = None


def mint_share_token(*, secret: str, claims: ShareClaims, ttl: timedelta) -> str:
    """The link an InMail carries, where the candidate can share contact details."""
    payload = {"aud": SHARE_AUDIENCE, "ten": claims.tenant_id, "pip": claims.crm_pipeline_id,
               "cid": claims.candidate_id, "did": claims.delivery_id, "rec": claims.recruiter,
               "org": claims.company, "rol": claims.role, "exp": datetime.now(UTC) + ttl}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def read_share_token(*, secret: str, token: str) -> ShareClaims:
    claims = _decode(secret=secret, token=token, audience=SHARE_AUDIENCE, what="contact-share link")
    return ShareClaims(tenant_id=claims["ten"], crm_pipeline_id=claims["pip"], candidate_id=claims["cid"],
                       delivery_id=claims["did"], recruiter=claims.get("rec"), company=claims.get("org"),
                       role=claims.get("rol"))


def _decode(*, secret: str, token: str, audience: str, what: str, verify_exp: bool = True) -> dict:
    try:
        return jwt.decode(token, secret, algorithms=[ALGORITHM], audience=audience,
                          options={"require": ["exp", "aud"], "verify_exp": verify_exp})
    except jwt.ExpiredSignatureError:
        raise TokenExpired(f"this {what} has expired") from None
    except jwt.InvalidTokenError:
        raise NotAuthenticated(f"this {what} is not valid") from None

"""The page an InMail links to, where a candidate can share email and phone with the recruiter's CRM."""

from __future__ import annotations

import html
import re
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from recmatch.accounts.tokens import ShareClaims, read_share_token
from recmatch.actions import service as actions
from recmatch.api.deps import EsDep, NamesDep, SecretDep
from recmatch.core.errors import InvalidInput, RecmatchError

router = APIRouter(tags=["contact share"], include_in_schema=False)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
PHONE = re.compile(r"^\+?[0-9 ()./\-]{6,30}$")
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d2430}}
label{{display:block;margin-top:1rem;font-weight:600}}input{{width:100%;padding:.5rem;font:inherit;
border:1px solid #8a94a6;border-radius:6px}}button{{margin-top:1.25rem;padding:.6rem 1.2rem;font:inherit;
background:#0a66c2;color:#fff;border:0;border-radius:6px}}.error{{color:#b42318}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code=status, headers=SECURITY_HEADERS)


def _who(claims: ShareClaims | None) -> str:
    """Who would like to reach the candidate, about what: "rita@acme.example of Acme Staffing, about the …"."""
    if claims is None or not (claims.recruiter or claims.company):
        return "A recruiter would like to reach you"
    who = html.escape(claims.recruiter or "A recruiter")
    company = f" of <strong>{html.escape(claims.company)}</strong>" if claims.company else ""
    role = f", about the <strong>{html.escape(claims.role)}</strong> role" if claims.role else ""
    return f"<strong>{who}</strong>{company} would like to reach you{role}"


def _form(error: str = "", email: str = "", phone: str = "", claims: ShareClaims | None = None) -> str:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    recipient = html.escape(claims.recruiter) if claims is not None and claims.recruiter else "them"
    return (f"<p>{_who(claims)}. Share what you are happy to share; it goes only to {recipient}.</p>"
            f'{message}<form method="post"><label for="email">Email</label>'
            f'<input id="email" name="email" type="email" autocomplete="email" value="{html.escape(email)}">'
            f'<label for="phone">Phone</label><input id="phone" name="phone" type="tel" autocomplete="tel" '
            f'value="{html.escape(phone)}"><button type="submit">Share with the recruiter</button></form>')


@router.get("/share/{token}", response_class=HTMLResponse)
async def share_form(token: str, secret: SecretDep) -> HTMLResponse:
    try:
        claims = read_share_token(secret=secret, token=token)
    except RecmatchError as exc:
        return _page("This link cannot be used", f"<p>{html.escape(exc.detail)}.</p>", status=exc.status_code)
    return _page("Share your contact details", _form(claims=claims))


@router.post("/share/{token}", response_class=HTMLResponse)
async def share_submit(token: str, secret: SecretDep, es: EsDep, names: NamesDep,
                       email: Annotated[str, Form(max_length=254)] = "",
                       phone: Annotated[str, Form(max_length=30)] = "") -> HTMLResponse:
    claims = None
    try:
        claims = read_share_token(secret=secret, token=token)
        contact = _validated(email.strip(), phone.strip())
    except InvalidInput as exc:
        return _page("Share your contact details", _form(exc.detail, email, phone, claims), status=422)
    except RecmatchError as exc:
        return _page("This link cannot be used", f"<p>{html.escape(exc.detail)}.</p>", status=exc.status_code)
    queued = await actions.record_contact_shared(es=es, names=names, claims=claims, contact=contact)
    said = "Thank you: the recruiter now has your details." if queued else "You had already shared your details."
    return _page("Thank you", f"<p>{said}</p>")


def _validated(email: str, phone: str) -> dict[str, str]:
    if not email and not phone:
        raise InvalidInput("give an email address, a phone number, or both")
    if email and not EMAIL.match(email):
        raise InvalidInput("that email address does not look right")
    if phone and not PHONE.match(phone):
        raise InvalidInput("a phone number has 6 to 30 digits, spaces, dashes or a leading +")
    return {key: value for key, value in (("email", email), ("phone", phone)) if value}

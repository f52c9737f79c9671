"""Where webhooks may go: URL checks when a tenant sets one, and again at send time against what the name resolves
to; what a failed send may say (a status code and a fixed short reason, never the receiver's body)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from recmatch.core.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints that are not link-local (AWS IPv6, Alibaba, Oracle); 169.254.0.0/16 is link-local anyway.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192"))


class RefusedDestination(ValueError):
    """A webhook URL this deployment does not send to; the message is safe to show the tenant."""


@dataclass(frozen=True)
class Destination:
    """A checked URL and the address it is sent to (pinned, so a second resolution cannot point elsewhere)."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the Host header and TLS SNI keep the name)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        return parts._replace(netloc=netloc).geturl()


def _allowed(address: IPAddress, settings: Settings) -> bool:
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.webhook_allowed_networks)


def _refusal(address: IPAddress) -> str | None:
    """Why ADDRESS is not a public one, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_multicast or address.is_unspecified \
            or (isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10")):
        return "a private or reserved address"
    return None


def check_address(address: IPAddress, settings: Settings) -> None:
    """Raise RefusedDestination unless ADDRESS is public or in an operator-allowed network."""
    reason = _refusal(address)
    if reason is not None and not _allowed(address, settings):
        raise RefusedDestination(f"it points at {reason}, which webhooks may not reach "
                                 "(an operator can allow a network with RECMATCH_WEBHOOK_ALLOWED_NETWORKS)")


def _parts(url: str, settings: Settings) -> SplitResult:
    if len(url) > 2048 or any(character.isspace() for character in url):
        raise RefusedDestination("it must be one absolute URL of at most 2048 characters, without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise RefusedDestination("it must start with https://")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise RefusedDestination("it must use https:// (http:// is for development deployments only)")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise RefusedDestination("it must name a host, without user or password")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise RefusedDestination("its port is not a number from 0 to 65535") from None
    return parts


def check_url(url: str, settings: Settings) -> None:
    """Check a webhook URL when it is set: the scheme, and the host when it is an address literal.

    A name is resolved at send time (names change; DNS may not be reachable from where tenants are managed)."""
    host = _parts(url, settings).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.rstrip(".").lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
            check_address(ipaddress.ip_address("127.0.0.1"), settings)
        return
    check_address(address, settings)


async def resolve(url: str, settings: Settings) -> Destination:
    """The destination to send to: every address the name resolves to must pass, and the first one is pinned."""
    parts = _parts(url, settings)
    host = parts.hostname or ""
    addresses: list[IPAddress] = []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                           type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        except (socket.gaierror, UnicodeError):
            pass
    if not addresses:
        raise RefusedDestination("its host name does not resolve")
    for address in addresses:
        check_address(address, settings)
    return Destination(url=url, host=host, address=str(addresses[0]))


def status_reason(status_code: int) -> str:
    """The fixed words a failed answer is described with: the receiver's body is never repeated."""
    if 300 <= status_code < 400:
        return "redirects are not followed"
    if status_code in (401, 403):
        return "the receiver refused the request (check the signing secret)"
    if status_code == 404:
        return "the receiver has no such path"
    if status_code == 429:
        return "the receiver asked to slow down"
    if 400 <= status_code < 500:
        return "the receiver rejected the request"
    return "the receiver failed"

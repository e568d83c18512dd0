"""Fetch a web page for ingestion without letting a URL reach inside the network.

Server-side request forgery is the risk: a URL naming (or resolving to, or redirecting to)
a private, loopback, link-local, metadata or otherwise non-global address could make the
worker read internal services. So every hop is resolved first, every address it resolves to
must be global (or allowed by ``URL_FETCH_ALLOW``: hosts or CIDRs, for tests and intranets),
and the connection goes to the checked address (the name is kept for ``Host`` and TLS), so a
second DNS answer cannot swap it. Redirects are followed by hand, each checked the same way;
size, time, redirects and content type are bounded.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from charterflow.ingest.errors import BadDocument, TransientError
from charterflow.services import filetypes
from charterflow.settings import Settings

URL_MEDIA_TYPE = "text/uri-list"  # what a URL source's stored object holds: its address
MAX_REDIRECTS = 5
TYPES = {
    "text/html": filetypes.HTML,
    "application/xhtml+xml": filetypes.HTML,
    "text/plain": filetypes.TXT,
    "text/markdown": filetypes.MARKDOWN,
    "text/csv": filetypes.CSV,
    "application/pdf": filetypes.PDF,
}
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Page:
    url: str
    media_type: str
    data: bytes


def _allowed(host: str, address: IP, allow: list[str]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


#: IPv6 prefixes whose last 32 bits are an IPv4 address that the packet may end up at: NAT64
#: (RFC 6052), IPv4-translated (RFC 2765), IPv4-compatible (deprecated; RFC 4291).
_EMBEDS_IPV4_LAST_32 = [
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("::/96"),
]
#: Refused whole: local-use NAT64 (RFC 8215; where the IPv4 sits depends on the local prefix
#: length) and Teredo (its client address is obfuscated, its server is any IPv4).
_REFUSED_V6 = [ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("2001::/32")]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, translated, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _EMBEDS_IPV4_LAST_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: IP) -> bool:
    """A global unicast address, also once an IPv4 address embedded in an IPv6 one (which
    Python's ``is_global`` judges by the IPv6 prefix alone) is taken out and judged."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _REFUSED_V6):
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return address.is_global and not address.is_multicast


def check_url(url: str, allow: list[str]) -> tuple[str, IP]:
    """The URL's host and the address to connect to; ``BadDocument`` when it is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BadDocument("the address is not a valid URL") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadDocument("only http and https addresses can be fetched")
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise BadDocument(f"the host {host[:100]!r} could not be found") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [a for a in addresses if not _public(a) and not _allowed(host, a, allow)]
    if refused or not addresses:
        raise BadDocument(
            f"{host} resolves to a private, loopback, link-local or reserved address "
            f"({refused[0] if refused else 'none'}); such addresses are not fetched"
        )
    return host, addresses[0]


def fetch(url: str, settings: Settings) -> Page:
    """The page at ``url`` (following checked redirects), within the configured bounds."""
    deadline = time.monotonic() + settings.url_fetch_timeout_seconds
    limit = settings.max_upload_bytes
    for _hop in range(MAX_REDIRECTS + 1):
        host, address = check_url(url, settings.url_fetch_allow)
        parts = urlsplit(url)
        netloc = f"[{address}]" if address.version == 6 else str(address)
        if parts.port:
            netloc += f":{parts.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransientError("fetching the page took too long")
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "CharterFlow/1"}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            with (
                httpx.Client(timeout=min(remaining, 10), follow_redirects=False) as client,
                client.stream("GET", target, headers=headers, extensions=extensions) as r,
            ):
                if r.is_redirect:
                    location = r.headers.get("location", "")
                    url = urljoin(url, location)
                    continue
                if r.status_code >= 400:
                    if r.status_code >= 500:
                        raise TransientError(f"the page answered {r.status_code}")
                    raise BadDocument(f"the page answered {r.status_code}")
                declared = r.headers.get("content-type", "").split(";")[0].strip().lower()
                media_type = TYPES.get(declared)
                if media_type is None:
                    raise BadDocument(f"pages of type {declared or 'unknown'} cannot be ingested")
                data = bytearray()
                for block in r.iter_bytes():
                    data += block
                    if len(data) > limit:
                        raise BadDocument(f"the page is larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise TransientError("fetching the page took too long")
                return Page(url, media_type, bytes(data))
        except httpx.HTTPError as exc:
            raise TransientError(f"the page could not be fetched ({type(exc).__name__})") from exc
    raise BadDocument(f"more than {MAX_REDIRECTS} redirects")

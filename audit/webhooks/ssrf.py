"""The SSRF guard: which webhook URLs may be called, and a POST that connects
only to the address it checked.

A URL is refused when its host is written as a non-canonical IP (decimal
`2130706433`, octal `0177.0.0.1`, hex, short forms), or when any address it
resolves to is loopback, private, link-local, unspecified, multicast,
reserved or otherwise not global, including IPv4-mapped (`::ffff:127.0.0.1`),
6to4 and Teredo forms of such addresses. Hosts listed in the
COMPLIANCE_WEBHOOK_ALLOWED_HOSTS setting (`host` or `host:port`) skip the
address check. The check runs at registration and again before every send;
the connection then goes to the checked address (no second DNS lookup, so
DNS rebinding cannot slip in), and each redirect hop is checked the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(Exception):
    """The URL may not be called (the detail says why)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and what to say in Host and SNI."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str
    url: str


def allowed_hosts() -> set[str]:
    return {
        h.strip().lower() for h in getattr(settings, "COMPLIANCE_WEBHOOK_ALLOWED_HOSTS", []) if h
    }


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address may not be called, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if embedded is not None:
                reason = blocked_reason(embedded)
                if reason:
                    return f"{reason} (embedded in {ip})"
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{ip} is a {name} address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, resolve: bool = True) -> Target:
    """Check a URL and return where to connect; raise UnsafeURL when refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not allowed")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeURL("the URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    allowed = allowed_hosts()
    allow_listed = host in allowed or f"{host}:{port}" in allowed
    literal = _literal(host)
    if literal is None and _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        # inet_aton would read these as an IP (2130706433, 0177.1, 0x7f.1):
        # refused outright instead of guessing how each library parses them.
        raise UnsafeURL(f"{host} is an IP address in a non-canonical form")
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return Target(parts.scheme, host, port, path, "")
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise UnsafeURL(f"{host} does not resolve: {exc}") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise UnsafeURL(f"{host} does not resolve")
    if not allow_listed:
        for ip in addresses:
            reason = blocked_reason(ip)
            if reason:
                raise UnsafeURL(f"{host} resolves to a refused address: {reason}")
    return Target(parts.scheme, host, port, path, str(addresses[0]))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _post_once(
    target: Target, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, str, str | None]:
    conn: Any
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target, timeout)
    else:
        conn = _PinnedHTTPConnection(target, timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        excerpt = response.read(500).decode("utf-8", "replace")
        return response.status, excerpt, response.getheader("Location")
    finally:
        conn.close()


def safe_post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """POST `body` to `url`, following up to MAX_REDIRECTS redirects; every hop
    is checked. Raises UnsafeURL for a refused hop, OSError / HTTPException for
    network trouble (TimeoutError when the receiver is too slow)."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(current)
        status, excerpt, location = _post_once(target, body, headers, timeout)
        if status in REDIRECT_STATUSES and location:
            current = urljoin(current, location)
            continue
        return Response(status, excerpt, current)
    raise UnsafeURL(f"more than {MAX_REDIRECTS} redirects")

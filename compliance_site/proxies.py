"""The client's address, trusting X-Forwarded-For only from configured proxies.

A header anyone can send cannot key a rate limit or a lockout: 200 guesses
with rotating X-Forwarded-For values once met no throttle. The forwarded chain
is believed only when the connection comes from one of
COMPLIANCE_TRUSTED_PROXIES (addresses or networks), and then only as far back
as it keeps passing through trusted proxies: the first address from the right
that is not one of them is the client."""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _trusted(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: Any) -> str:
    """The address to rate-limit and lock out by (used by DRF's throttles and django-axes)."""
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR") or "")
    networks = _trusted(tuple(settings.COMPLIANCE_TRUSTED_PROXIES))
    if not networks or not _is_trusted(remote, networks):
        return remote
    chain = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for address in reversed([part for part in chain if part]):
        if not _is_trusted(address, networks):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return remote  # garbage in the header: fall back to the proxy itself
    return remote

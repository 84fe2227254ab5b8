"""IP networks from the settings (ECHO_TRUSTED_PROXIES, ECHO_METRICS_ALLOW), and whether an
address belongs to one of them."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address

Network = IPv4Network | IPv6Network


def address_in(address: str, networks: Iterable[Network]) -> bool:
    """False for anything that is not an IP address, such as a unix socket's empty peer."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)

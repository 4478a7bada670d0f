"""Which ``Host`` names a server answers: loopback names always, others when named or when it is bound elsewhere.

A page of another site that a browser was tricked into sending to a
loopback server (DNS rebinding) names its own host; the connection refuses
it (421) on every path, by this rule.
"""

from __future__ import annotations

import ipaddress
from typing import FrozenSet, Iterable, Optional

__all__ = ["host_name", "is_loopback_name", "allowed_hosts"]


def host_name(value: str) -> str:
    """The name in a ``Host`` header or a URL's authority, without its port, lower case (``[::1]`` as is)."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal, then nothing or a port: anything else is not its name
        literal, bracket, rest = value.partition("]")
        ends = rest == "" or (rest[:1] == ":" and rest[1:].isdigit())
        return literal + "]" if bracket and ends else value  # "[::1" without its "]" names nothing
    name, colon, port = value.rpartition(":")
    return name.rstrip(".") if colon and port.isdigit() and ":" not in name else value.rstrip(".")


def is_loopback_name(name: str) -> bool:
    if name in ("localhost", "[::1]") or name.endswith(".localhost"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(part.isdigit() and int(part) < 256 for part in parts)


def allowed_hosts(bound: str, named: Iterable[str] = ()) -> Optional[FrozenSet[str]]:
    """The ``Host`` names a server bound to ``bound`` answers, or None for any.

    Bound to a loopback address, it answers loopback names (``localhost``,
    ``127.0.0.1``, ``[::1]``, any port) and those ``named``: a page of another
    site that a browser was tricked into sending here (DNS rebinding) names its
    own host and is refused. Bound elsewhere, it answers any name unless some
    are ``named``; loopback names are always answered.
    """
    names = frozenset(host_name(one) for one in named if one.strip())
    if names or is_loopback_name(host_name(bound)) or _is_loopback_address(bound):
        return names
    return None


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

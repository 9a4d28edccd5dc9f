"""Which addresses steps may call: never the hub's own network unless an administrator allows it.

A step that can call any URL could otherwise reach the hub's Redis, database, cloud metadata service
(169.254.169.254) or any host on the internal network (server-side request forgery). Host names are resolved
here, every address is checked, and the connection then goes to the checked address (so a DNS answer that
changes between check and connect cannot slip through).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runtime.steps.errors import PermanentStepError, StepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")


class EgressRefusedError(PermanentStepError):
    """The target is on a network steps may not reach; retrying cannot help."""


def internal(address: IPAddress) -> bool:
    """Loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour  # ::ffff:a.b.c.d and 2002:aabb:ccdd::
        if embedded is not None:
            return internal(embedded)
        if address.is_site_local:
            return True
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _CARRIER_GRADE_NAT)
    )


@dataclass(frozen=True)
class Target:
    """A URL whose host was resolved and checked: connect to `address`, present `host`."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{host}:{self.port}"
        return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class EgressPolicy:
    """`allowed`: host names (wildcards like *.corp.example) and networks (10.1.0.0/16, 127.0.0.1) that steps
    may reach although they are internal."""

    allowed: tuple[str, ...] = ()
    # Asked before each HTTP request of a step: the tenant's outbound rate quota (it waits or rebounds).
    pace: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, value: str) -> EgressPolicy:
        """From a comma-separated list; raises ValueError naming a bad entry."""
        entries = tuple(item.strip().lower() for item in value.split(",") if item.strip())
        for entry in entries:
            if any(c in entry for c in "/:") or entry.replace(".", "").isdigit():
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is neither a host name nor an address or network") from None
        return cls(entries)

    def _allows(self, host: str, address: IPAddress) -> bool:
        for entry in self.allowed:
            if any(c in entry for c in "/:") or entry.replace(".", "").isdigit():
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            elif fnmatch.fnmatch(host.lower(), entry):
                return True
        return False

    def check(self, url: str, *, paced: bool = True) -> Target:
        """Resolve and check the URL's host. Raises EgressRefusedError, or PermanentStepError for a bad URL."""
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError as exc:
            raise PermanentStepError(f"the URL is malformed ({exc}): {url!r}") from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise PermanentStepError(
                f"the URL must start with http:// or https:// and name a host (got {url!r})"
            )
        if parts.username is not None or parts.password is not None:
            raise PermanentStepError(
                "a user name or password in the URL is not sent; put them in a credential"
            )
        try:
            host = hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise PermanentStepError(f"{hostname!r} is not a valid host name") from None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PermanentStepError(f"the URL's port is not a number (got {url!r})") from None
        target = Target(url, parts.scheme, host, port, self.check_host(host, port))
        if paced and self.pace is not None:  # only a request that is allowed at all counts against the rate
            self.pace()
        return target

    def check_host(self, host: str, port: int) -> str:
        """Resolve `host` and check every address; returns the address to connect to."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:  # DNS can come back: retryable
            raise StepError(f"cannot resolve {host}: {exc.strerror}") from None
        # IPv4 first: a name with both kinds of address is most often served on IPv4.
        addresses = sorted(
            {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos},
            key=lambda a: (a.version, str(a)),
        )
        for address in addresses:
            if internal(address) and not self._allows(host, address):
                raise EgressRefusedError(
                    f"{host} resolves to {address}, an internal address steps may not call; an administrator "
                    "can allow it with HUB_EGRESS_ALLOW"
                )
        return str(addresses[0])

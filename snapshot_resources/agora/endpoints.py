"""Agora's REST domains, the failover order between them, and the endpoint safety check.

Reference section 1.1.  The default order (S11 "Switch domain name"):

1. retry the primary domain once (``api.agora.io`` outside mainland China, ``api.sd-rtn.com``
   inside, S11);
2. switch to the other primary domain, but only after a DNS fault: "if the failure is a network
   fault and not a DNS fault, skip step 2" (S11);
3. the regional domains of the area, both suffixes (S11 table; G1 ``agora/domain/domain.go`` tries
   ``sd-rtn.com`` first in CN and ``agora.io`` first elsewhere).

An override (the emulator, or a proxy) replaces the whole list; plain ``http://`` is accepted only
for a loopback host, so credentials never cross a network unencrypted (S1, S22: HTTPS only).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .errors import EndpointError

__all__ = [
    "AREAS",
    "PRIMARY_DOMAINS",
    "EndpointList",
    "FaultKind",
    "default_endpoints",
    "is_loopback_host",
    "validate_endpoint",
]

AGORA_IO: Final = "agora.io"
SD_RTN: Final = "sd-rtn.com"
PRIMARY_DOMAINS: Final = (f"api.{AGORA_IO}", f"api.{SD_RTN}")  # S11, S1

# Area -> regional prefixes (S11 table; G1 groups the same eight prefixes into these four areas).
AREAS: Final = {
    "US": ("api-us-west-1", "api-us-east-1"),
    "EU": ("api-eu-west-1", "api-eu-central-1"),
    "AP": ("api-ap-southeast-1", "api-ap-northeast-1"),
    "CN": ("api-cn-east-1", "api-cn-north-1"),
}

# acquire's clientRequest.region names (S2) -> the domain area. "NA" is North America (S2).
_HINT_AREAS: Final = {"NA": "US", "US": "US", "EU": "EU", "AP": "AP", "CN": "CN"}

# Without a hint the client cannot tell where the primary domain resolved (S11 step 3 keys on
# that), so it assumes the area that goes with api.agora.io, "outside mainland China": US.
DEFAULT_AREA: Final = "US"

FaultKind = Literal["dns", "network"]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True  # RFC 6761 section 6.3: always the loopback interface
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(url: str) -> str:
    """Return ``url`` normalised (no trailing slash), or raise :class:`EndpointError`.

    Refused: schemes other than https (http only to loopback), user info (a credential in a URL
    would end up in logs and exception text), query strings and fragments.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointError(
            f"endpoint must be an https:// URL with a host, got scheme {parts.scheme!r}"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EndpointError("endpoint must not contain user info; credentials go in the header")
    if parts.query or parts.fragment:
        raise EndpointError("endpoint must not contain a query string or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise EndpointError(
            f"plain http:// is refused for {parts.hostname!r}: Agora is HTTPS only (S1, S22); "
            "http is allowed only to a loopback address (the emulator)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise EndpointError(f"endpoint has an invalid port: {exc}") from None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def default_endpoints(region_hint: str | None = None) -> tuple[str, ...]:
    """Agora's domains in failover order for ``region_hint`` (an acquire region or area name)."""
    area = _HINT_AREAS.get((region_hint or "").strip().upper(), DEFAULT_AREA)
    china = area == "CN"
    # Primary: sd-rtn.com inside mainland China, agora.io outside (S11).
    primaries = tuple(reversed(PRIMARY_DOMAINS)) if china else PRIMARY_DOMAINS
    suffixes = (SD_RTN, AGORA_IO) if china else (AGORA_IO, SD_RTN)  # G1 domain.go
    regional = tuple(f"{prefix}.{suffix}" for suffix in suffixes for prefix in AREAS[area])
    return tuple(f"https://{host}" for host in (*primaries, *regional))


@dataclass(frozen=True)
class EndpointList:
    """An ordered list of base URLs and the rule for moving along it after a transport fault.

    ``agora_defaults`` marks Agora's own list, where the second entry is the other primary domain
    and is skipped after a network (not DNS) fault (S11).  For an explicit list every entry is
    simply the next one to try.
    """

    urls: tuple[str, ...]
    agora_defaults: bool = False

    @classmethod
    def build(
        cls, endpoint: str | Sequence[str] | None, region_hint: str | None = None
    ) -> EndpointList:
        if endpoint is None:
            return cls(default_endpoints(region_hint), agora_defaults=True)
        given = (endpoint,) if isinstance(endpoint, str) else tuple(endpoint)
        if not given:
            raise EndpointError("endpoint list is empty")
        return cls(tuple(validate_endpoint(u) for u in given))

    @property
    def all_loopback(self) -> bool:
        return all(
            is_loopback_host(urllib.parse.urlsplit(u).hostname or "") for u in self.urls
        )

    def after_fault(self, index: int, tries_here: int, kind: FaultKind, first: int = 0) -> int:
        """The index to try after a transport fault at ``index`` (tried ``tries_here`` times).

        ``first`` is where the call began (the primary, or the endpoint that last worked).  Step 1
        of S11: a fault there is retried once on the same endpoint; after that the call moves on.
        The list wraps around, so a long outage keeps cycling within the call's attempt budget.
        """
        if index == first and tries_here < 2:
            return index
        nxt = index + 1
        if self.agora_defaults and index == 0 and kind == "network" and len(self.urls) > 2:
            nxt = 2  # skip the other primary on a network (not DNS) fault (S11)
        return nxt % len(self.urls)

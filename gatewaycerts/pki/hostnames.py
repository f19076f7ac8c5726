"""Does a certificate cover a domain name? RFC 6125 §6.4 matching, as TLS clients do it."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_domain(domain: str, *, allow_wildcard: bool = False) -> str | None:
    """Lower-cased domain without a trailing dot, or None when it is not a valid host name or IP.

    With `allow_wildcard`, `*.example.com` (a whole left-most `*` label over at least two labels) is valid.
    """
    d = domain.strip().lower().rstrip(".")
    if not d or len(d) > 253:
        return None
    try:
        return str(ipaddress.ip_address(d))
    except ValueError:
        pass
    labels = d.split(".")
    if allow_wildcard and labels[0] == "*" and len(labels) >= 3:
        labels = labels[1:]
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    return d


def _dns_match(pattern: str, host: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern == host:
        return True
    # Only a wildcard that is the whole left-most label, over at least two more labels, matches,
    # and it matches exactly one label (RFC 6125 §6.4.3; no partial-label wildcards).
    p_labels = pattern.split(".")
    h_labels = host.split(".")
    if p_labels[0] != "*" or len(p_labels) < 3 or "*" in ".".join(p_labels[1:]):
        return False
    return len(h_labels) == len(p_labels) and h_labels[1:] == p_labels[1:]


def covers(domain: str, *, common_name: str, dns_names: tuple[str, ...], ip_addresses: tuple[str, ...]) -> bool:
    """True when the certificate's identifiers cover `domain` (already normalised).

    The subject CN is used only when the certificate has no DNS SAN (RFC 6125 §6.4.4).
    """
    try:
        ip = ipaddress.ip_address(domain)
    except ValueError:
        ip = None
    if ip is not None:
        return any(ipaddress.ip_address(a) == ip for a in ip_addresses)
    names = dns_names or ((common_name,) if common_name else ())
    return any(_dns_match(n, domain) for n in names)

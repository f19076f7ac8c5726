"""dns-01 through RFC 2136 dynamic updates signed with TSIG (RFC 8945), with dnspython over TCP.

The caller gives an already resolved and checked server address (AddressPolicy): this module never resolves
names. Errors name the server's rcode or the transport failure, never the TSIG secret.
"""

from __future__ import annotations

import dns.asyncquery
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from gatewaycerts.domain.acme_client import DnsUpdateError, DnsUpdateTarget

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}
TXT_TTL = 60


def challenge_name(domain: str) -> str:
    """_acme-challenge.<domain>. (a wildcard's name without its "*.")."""
    return f"_acme-challenge.{domain.removeprefix('*.').rstrip('.')}."


class DnsUpdater:
    """Implements core.renewal.acme_source.DnsUpdateProtocol."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def _message(self, target: DnsUpdateTarget) -> dns.update.UpdateMessage:
        algorithm = ALGORITHMS.get(target.key.algorithm)
        if algorithm is None:
            raise DnsUpdateError(f"unsupported TSIG algorithm {target.key.algorithm!r}")
        keyname = dns.name.from_text(target.key.name)
        keyring = {keyname: dns.tsig.Key(keyname, target.key.secret, algorithm)}
        return dns.update.UpdateMessage(
            dns.name.from_text(target.zone), keyring=keyring, keyname=keyname, keyalgorithm=algorithm
        )

    async def _send(self, target: DnsUpdateTarget, message: dns.update.UpdateMessage, what: str) -> None:
        try:
            response = await dns.asyncquery.tcp(message, target.server_address, port=target.port, timeout=self._timeout)
        except dns.tsig.PeerError as exc:
            raise DnsUpdateError(f"{what}: the name server refused the TSIG signature ({type(exc).__name__})") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsUpdateError(
                f"{what}: no answer from {target.server_address}:{target.port} ({type(exc).__name__})"
            ) from None
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            raise DnsUpdateError(f"{what}: the name server answered {dns.rcode.to_text(rcode)}")

    async def add_txt(self, target: DnsUpdateTarget, domain: str, value: str) -> None:
        message = self._message(target)
        message.add(dns.name.from_text(challenge_name(domain)), TXT_TTL, dns.rdatatype.TXT, f'"{value}"')
        await self._send(target, message, f"adding the TXT record of {challenge_name(domain)}")

    async def delete_txt(self, target: DnsUpdateTarget, domain: str, value: str) -> None:
        message = self._message(target)
        message.delete(dns.name.from_text(challenge_name(domain)), dns.rdatatype.TXT, f'"{value}"')
        await self._send(target, message, f"deleting the TXT record of {challenge_name(domain)}")

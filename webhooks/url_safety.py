"""Server-side request forgery guard for webhook URLs.

A webhook makes PayLedger's servers send a request wherever a seller says, so
the URL must be HTTPS and every address its host resolves to must reach the
public internet. The policy judges what a connection would reach, not how an
address is spelled: an IPv6 form that carries an IPv4 address (IPv4-mapped,
NAT64, 6to4, Teredo) is judged by that IPv4 address, since the kernel, a
translator or a relay delivers the connection there. It is an explicit table
(docs/webhook-addresses.md shows it row by row) rather than
``ipaddress.is_global``, whose lists differ between Python releases and call
NAT64, 6to4 and IPv4-compatible addresses global.

A URL is checked when the endpoint is registered and resolved again, once, for
each delivery: webhooks/transport.py connects to the addresses that lookup
vetted, never to a second answer.
"""

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Rule(NamedTuple):
    network: IPNetwork
    reason: str


class EmbeddedForm(NamedTuple):
    network: ipaddress.IPv6Network
    name: str
    # The IPv4 addresses a connection to an address of this form reaches.
    reaches: Callable[[ipaddress.IPv6Address], tuple[ipaddress.IPv4Address, ...]]


def _rules(*rows: tuple[str, str]) -> tuple[Rule, ...]:
    return tuple(Rule(ipaddress.ip_network(network), reason) for network, reason in rows)


LOOPBACK = _rules(("127.0.0.0/8", "loopback"), ("::1/128", "loopback"))

# Refused whatever the port or path; the IPv4 rows also judge every IPv4
# address embedded in an IPv6 form.
REFUSED = LOOPBACK + _rules(
    ("0.0.0.0/8", "'this network': 0.0.0.0 reaches the host itself"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("169.254.0.0/16", "link-local, where cloud metadata answers (169.254.169.254)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated): whichever relay is nearest"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, and the broadcast address"),
    ("::/96", "unspecified, or IPv4-compatible (deprecated; a tunnel may deliver it)"),
    ("64:ff9b:1::/48", "local-use NAT64: where the IPv4 address sits is the site's choice"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) identifiers"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)

# Everything IANA allocates for global unicast; the rest of IPv6 is refused.
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

EMBEDDED_IPV4_FORMS = (
    EmbeddedForm(
        ipaddress.IPv6Network("::ffff:0:0/96"),
        "IPv4-mapped",
        lambda address: (address.ipv4_mapped,),
    ),
    EmbeddedForm(
        ipaddress.IPv6Network("64:ff9b::/96"),
        "NAT64",
        lambda address: (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),),
    ),
    EmbeddedForm(
        ipaddress.IPv6Network("2002::/16"),
        "6to4",
        lambda address: (address.sixtofour,),
    ),
    # Teredo: the server's address, and the client's (its bits inverted).
    EmbeddedForm(ipaddress.IPv6Network("2001::/32"), "Teredo", lambda address: address.teredo),
)


def _loopback(address: IPAddress) -> bool:
    return any(address in rule.network for rule in LOOPBACK)


def address_refusal(address: IPAddress) -> str | None:
    """Why a connection to ``address`` must not be made; None if it may."""
    for form in EMBEDDED_IPV4_FORMS:
        if address in form.network:
            for ipv4 in form.reaches(address):
                if reason := address_refusal(ipv4):
                    return f"{form.name} of {ipv4}: {reason}"
            return None
    if settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK and _loopback(address):
        return None
    for rule in REFUSED:
        if address in rule.network:
            return rule.reason
    if address.version == 6 and address not in GLOBAL_UNICAST:
        return f"outside global unicast {GLOBAL_UNICAST}"
    return None


@dataclass(frozen=True)
class WebhookTarget:
    """Where a delivery goes: every address the host resolved to, each allowed."""

    scheme: str
    host: str  # ASCII; the name for TLS (SNI and the certificate)
    port: int
    host_header: str
    path: str  # with the query, percent-encoded
    # getaddrinfo's answers: (family, type, proto, canonname, sockaddr)
    addresses: tuple[tuple, ...]


def _invalid(message: str, code: str) -> ValidationError:
    return ValidationError({"url": ValidationError(message, code=code)})


def _lookup(host: str, port: int, timeout: float) -> list[tuple]:
    """``getaddrinfo`` that gives up after ``timeout`` seconds (TimeoutError).

    A lookup cannot be interrupted, so it runs in a thread of its own; one that
    outlives ``timeout`` is left to end by the resolver's own limits."""
    outcome: list = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP))
        except Exception as error:  # raised again below, in the caller's thread
            outcome.append(error)

    thread = threading.Thread(target=lookup, name="webhook-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"{host} did not resolve within {timeout:g} s")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def webhook_url_resolve(url: str, *, timeout: float) -> WebhookTarget:
    """Resolve ``url``'s host once and judge every answer.

    Raises ``ValidationError`` on ``url`` if the URL may not receive webhooks,
    ``TimeoutError`` if the lookup takes longer than ``timeout`` seconds."""
    try:
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        port = default_port if parts.port is None else parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise _invalid("Enter a valid URL.", "invalid_url") from None
    schemes = {"https", "http"} if settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK else {"https"}
    if parts.scheme not in schemes:
        raise _invalid("A webhook URL must use https.", "insecure_url")
    if not host or parts.username is not None or parts.password is not None:
        raise _invalid("A webhook URL needs a host and no credentials.", "invalid_url")
    try:
        answers = _lookup(host, port, timeout)
    except TimeoutError:
        raise
    except (OSError, UnicodeError):
        raise _invalid("The webhook URL's host does not resolve.", "unresolvable_url") from None
    addresses = [ipaddress.ip_address(answer[4][0].split("%", 1)[0]) for answer in answers]
    for address in addresses:
        if address_refusal(address) is not None:
            raise _invalid(
                "A webhook URL must not point at a private or internal address.",
                "forbidden_address",
            )
    # Plain HTTP only where the developer's switch lets loopback through, and
    # only to loopback: the switch changes nothing for any other address.
    if parts.scheme == "http" and not all(_loopback(address) for address in addresses):
        raise _invalid("A webhook URL must use https.", "insecure_url")
    bracketed = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebhookTarget(
        scheme=parts.scheme,
        host=host,
        port=port,
        host_header=bracketed if parts.port is None else f"{bracketed}:{parts.port}",
        path=quote(path, safe="/?&=%:@!$'()*+,;~-._"),
        addresses=tuple(answers),
    )


def webhook_url_check(url: str) -> None:
    """Raise ``ValidationError`` unless ``url`` may receive webhooks."""
    try:
        webhook_url_resolve(url, timeout=settings.PAYLEDGER_WEBHOOK_TIMEOUT)
    except TimeoutError:
        raise _invalid("The webhook URL's host does not resolve.", "unresolvable_url") from None

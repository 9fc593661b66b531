"""Server-side request forgery guard for webhook URLs.

A webhook makes PayLedger's servers send a request wherever a seller says, so
the URL must be HTTPS and every address its host resolves to must be public:
no loopback, private, link-local (cloud metadata lives at 169.254.169.254),
shared, reserved or multicast range. It is checked when the endpoint is
registered and again before each delivery, since DNS answers change.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback and settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK:
        return True
    return address.is_global and not address.is_multicast


def webhook_url_check(url: str) -> None:
    """Raise ``ValidationError`` unless ``url`` may receive webhooks."""
    parts = urlsplit(url)
    schemes = {"https", "http"} if settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK else {"https"}
    if parts.scheme not in schemes:
        raise ValidationError({"url": "A webhook URL must use https."}, code="insecure_url")
    if not parts.hostname or parts.username or parts.password:
        raise ValidationError({"url": "A webhook URL needs a host and no credentials."})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolved = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        raise ValidationError(
            {"url": "The webhook URL's host does not resolve."}, code="unresolvable_url"
        ) from None
    for *_, sockaddr in resolved:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not _address_allowed(address):
            raise ValidationError(
                {"url": "A webhook URL must not point at a private or internal address."},
                code="forbidden_address",
            )

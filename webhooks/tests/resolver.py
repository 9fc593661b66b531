"""DNS for the webhook tests: ``socket.getaddrinfo`` answering what a test says.

Patched on the ``socket`` module, so the address check, the connection and
anything else in the process (any thread) see the same answers.
"""

import socket
import time
from collections.abc import Callable
from unittest import mock

_real_getaddrinfo = socket.getaddrinfo


def _answer(addresses: list[str], port) -> list[tuple]:
    answer = []
    for address in addresses:
        if ":" in address:
            answer.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        else:
            answer.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
    return answer


def _patched(addresses_for: Callable[[str], list[str] | None], delay: float = 0.0):
    def getaddrinfo(host, port, *args, **kwargs):
        addresses = addresses_for(host)
        if addresses is None:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        time.sleep(delay)
        return _answer(addresses, port)

    return mock.patch("socket.getaddrinfo", side_effect=getaddrinfo)


def resolving_to(*addresses: str):
    """Every host resolves to ``addresses``."""
    return _patched(lambda host: list(addresses))


def resolving(name: str, *addresses: str, delay: float = 0.0):
    """``name`` resolves to ``addresses`` after ``delay`` seconds; every other host as usual."""
    return _patched(lambda host: list(addresses) if host == name else None, delay)


def rebinding(first: str, then: str):
    """Every host resolves to ``first`` once, and to ``then`` ever after: a DNS
    server with a zero TTL that changes its answer once the name has been checked."""
    lookups = []

    def addresses_for(host: str) -> list[str]:
        lookups.append(host)
        return [first if len(lookups) == 1 else then]

    return _patched(addresses_for)

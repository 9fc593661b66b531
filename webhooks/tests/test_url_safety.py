"""The address policy, one test per row of docs/webhook-addresses.md.

Each row's sample is what a host name resolves to; the webhook URL naming that
host must be refused. The forms that embed an IPv4 address are judged by that
address: the same form around a public address is accepted.
"""

import ipaddress
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from webhooks.tests.resolver import resolving_to
from webhooks.url_safety import (
    EMBEDDED_IPV4_FORMS,
    GLOBAL_UNICAST,
    REFUSED,
    address_refusal,
    webhook_url_check,
)

DOCS = Path(settings.BASE_DIR) / "docs" / "webhook-addresses.md"
PUBLIC = "93.184.215.14"

# (the row's range as the table names it, a resolved address it refuses)
REFUSED_SAMPLES = [
    ("0.0.0.0/8", "0.0.0.0"),
    ("10.0.0.0/8", "10.0.0.5"),
    ("100.64.0.0/10", "100.64.0.1"),
    ("127.0.0.0/8", "127.0.0.1"),
    ("169.254.0.0/16", "169.254.169.254"),
    ("172.16.0.0/12", "172.16.3.4"),
    ("192.0.0.0/24", "192.0.0.8"),
    ("192.0.2.0/24", "192.0.2.1"),
    ("192.88.99.0/24", "192.88.99.1"),
    ("192.168.0.0/16", "192.168.1.1"),
    ("198.18.0.0/15", "198.18.0.1"),
    ("198.51.100.0/24", "198.51.100.1"),
    ("203.0.113.0/24", "203.0.113.1"),
    ("224.0.0.0/4", "224.0.0.1"),
    ("240.0.0.0/4", "255.255.255.255"),
    ("::ffff:0:0/96", "::ffff:169.254.169.254"),
    ("64:ff9b::/96", "64:ff9b::a9fe:a9fe"),
    ("2002::/16", "2002:7f00:1::"),
    ("2001::/32", "2001:0:a00:1::a247:28f1"),  # Teredo server 10.0.0.1
    ("2001::/32", "2001:0:5db8:d70e::f5ff:fffe"),  # Teredo client 10.0.0.1
    ("::1/128", "::1"),
    ("::/96", "::169.254.169.254"),
    ("::/96", "::"),
    ("64:ff9b:1::/48", "64:ff9b:1::5db8:d70e"),
    ("100::/64", "100::1"),
    ("2001::/23", "2001:2::1"),
    ("2001:db8::/32", "2001:db8::1"),
    ("3fff::/20", "3fff::1"),
    ("5f00::/16", "5f00::1"),
    ("fc00::/7", "fd00::1"),
    ("fe80::/10", "fe80::1"),
    ("fec0::/10", "fec0::1"),
    ("ff00::/8", "ff02::1"),
    (f"outside {GLOBAL_UNICAST}", "4000::1"),
]

# The embedded forms around a public address, and plain public addresses.
ACCEPTED_SAMPLES = [
    ("IPv4", PUBLIC),
    ("IPv6", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
    ("IPv4-mapped", "::ffff:" + PUBLIC),
    ("NAT64", "64:ff9b::5db8:d70e"),
    ("6to4", "2002:5db8:d70e::1"),
    ("Teredo", "2001:0:5db8:d70e::a247:28f1"),
]


@pytest.fixture(autouse=True)
def production_policy(settings):
    settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK = False


@pytest.mark.parametrize(
    "row, address", REFUSED_SAMPLES, ids=[f"{row} {address}" for row, address in REFUSED_SAMPLES]
)
def test_a_name_resolving_into_the_row_is_refused_by_that_row(row, address):
    with resolving_to(address), pytest.raises(ValidationError) as refused:
        webhook_url_check("https://hooks.example.com/")
    assert refused.value.message_dict == {
        "url": ["A webhook URL must not point at a private or internal address."]
    }
    assert address_refusal(ipaddress.ip_address(address)).startswith(_reason_of(row))


def _reason_of(row: str) -> str:
    """How the policy's refusal by ``row`` begins."""
    for rule in REFUSED:
        if str(rule.network) == row:
            return rule.reason
    for form in EMBEDDED_IPV4_FORMS:
        if str(form.network) == row:
            return f"{form.name} of "
    return row.replace("outside", "outside global unicast")


@pytest.mark.parametrize("form, address", ACCEPTED_SAMPLES, ids=[f for f, _ in ACCEPTED_SAMPLES])
def test_a_public_address_is_accepted_plain_or_embedded(form, address):
    with resolving_to(address):
        webhook_url_check("https://hooks.example.com/")


def _docs_rows() -> set[str]:
    """The first cell of every table row in the docs, without its backquotes."""
    return set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(), re.MULTILINE))


def test_the_docs_table_has_a_row_for_each_range_the_policy_names():
    ranges = {str(rule.network) for rule in REFUSED} | {
        str(form.network) for form in EMBEDDED_IPV4_FORMS
    }
    assert _docs_rows() == ranges | {f"outside {GLOBAL_UNICAST}"}


def test_every_row_of_the_docs_table_has_a_sample_here():
    assert {row for row, _ in REFUSED_SAMPLES} == _docs_rows()

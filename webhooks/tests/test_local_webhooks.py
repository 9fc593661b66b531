"""The developer's switch (PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK) lets loopback
addresses through the address policy, and nothing else."""

import pytest
from django.core.exceptions import ValidationError

from webhooks.tests.resolver import resolving_to
from webhooks.url_safety import webhook_url_check

PUBLIC = "93.184.215.14"


@pytest.fixture
def switch_on(settings):
    settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def switch_off(settings):
    settings.PAYLEDGER_WEBHOOK_ALLOW_LOOPBACK = False


def refusal_code(url: str) -> str:
    with pytest.raises(ValidationError) as refused:
        webhook_url_check(url)
    [error] = refused.value.error_dict["url"]
    return error.code


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765/", "http://127.8.9.10/", "http://[::1]:8765/"]
)
def test_the_switch_lets_loopback_through_over_plain_http(switch_on, url):
    webhook_url_check(url)


def test_the_switch_lets_a_name_resolving_to_loopback_through(switch_on):
    with resolving_to("127.0.0.1"):
        webhook_url_check("http://localhost:8765/")


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "169.254.169.254", "fd00::1"])
def test_the_switch_still_refuses_private_addresses(switch_on, address):
    with resolving_to(address):
        assert refusal_code("https://internal.example.com/") == "forbidden_address"


def test_the_switch_allows_plain_http_to_loopback_only(switch_on):
    with resolving_to(PUBLIC):
        assert refusal_code("http://shop.example.com/") == "insecure_url"


def test_a_name_resolving_to_loopback_and_a_public_address_is_refused_plain_http(switch_on):
    with resolving_to("127.0.0.1", PUBLIC):
        assert refusal_code("http://mixed.example.com/") == "insecure_url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/", "https://127.0.0.1/", "https://[::1]/"])
def test_without_the_switch_loopback_is_refused(switch_off, url):
    assert refusal_code(url) in {"forbidden_address", "insecure_url"}

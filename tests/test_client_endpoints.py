"""Agora's domains, the failover order and the endpoint safety check (agora.endpoints)."""

from __future__ import annotations

import pytest

from snapshot_resources.agora.client import AgoraClient
from snapshot_resources.agora.endpoints import (
    EndpointList,
    default_endpoints,
    is_loopback_host,
    validate_endpoint,
)
from snapshot_resources.agora.errors import EndpointError


def test_default_order_outside_china_starts_with_api_agora_io() -> None:
    assert default_endpoints() == (
        "https://api.agora.io",
        "https://api.sd-rtn.com",
        "https://api-us-west-1.agora.io",
        "https://api-us-east-1.agora.io",
        "https://api-us-west-1.sd-rtn.com",
        "https://api-us-east-1.sd-rtn.com",
    )


def test_china_starts_with_api_sd_rtn_com_and_its_regional_suffix() -> None:
    urls = default_endpoints("CN")
    assert urls[:2] == ("https://api.sd-rtn.com", "https://api.agora.io")
    assert urls[2:4] == ("https://api-cn-east-1.sd-rtn.com", "https://api-cn-north-1.sd-rtn.com")


@pytest.mark.parametrize(("hint", "prefix"), [("EU", "api-eu-west-1"), ("ap", "api-ap-southeast-1"),
                                              ("NA", "api-us-west-1")])
def test_region_hint_picks_the_regional_domains_of_its_area(hint: str, prefix: str) -> None:
    assert default_endpoints(hint)[2] == f"https://{prefix}.agora.io"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.3.4.5", "http://[::1]:9000", "http://localhost:1"]
)
def test_plain_http_is_accepted_for_loopback(url: str) -> None:
    assert validate_endpoint(url + "/") == url


@pytest.mark.parametrize(
    "url", ["http://api.agora.io", "http://10.0.0.1:8080", "http://localhost.example.com"]
)
def test_plain_http_is_refused_elsewhere(url: str) -> None:
    with pytest.raises(EndpointError, match="plain http:// is refused"):
        validate_endpoint(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://id:secret@api.agora.io", "user info"),
        ("https://api.agora.io/?token=x", "query string"),
        ("ftp://api.agora.io", "https://"),
        ("api.agora.io", "https://"),
    ],
)
def test_unsafe_or_malformed_endpoints_are_refused(url: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message) as info:
        validate_endpoint(url)
    assert "secret" not in str(info.value)


def test_client_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(EndpointError):
        AgoraClient("id", "secret", endpoint="http://example.com")


def test_client_with_an_override_uses_only_that_endpoint() -> None:
    client = AgoraClient("id", "secret", endpoint="http://127.0.0.1:1234/")
    assert client.endpoints == ("http://127.0.0.1:1234",)


def test_loopback_check() -> None:
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("8.8.8.8")
    assert not is_loopback_host("example.com")


class TestFailoverOrder:
    agora = EndpointList(default_endpoints(), agora_defaults=True)

    def test_first_fault_retries_the_primary(self) -> None:
        assert self.agora.after_fault(0, 1, "network") == 0

    def test_dns_fault_moves_to_the_other_primary(self) -> None:
        assert self.agora.after_fault(0, 2, "dns") == 1

    def test_network_fault_skips_the_other_primary(self) -> None:
        assert self.agora.after_fault(0, 2, "network") == 2

    def test_regional_domains_follow_in_order_and_wrap(self) -> None:
        last = len(self.agora.urls) - 1
        assert self.agora.after_fault(2, 1, "network") == 3
        assert self.agora.after_fault(last, 1, "network") == 0

    def test_the_endpoint_a_call_began_on_is_retried_once(self) -> None:
        # After a success on the regional domain at index 3, calls begin there (S11 step 1).
        assert self.agora.after_fault(3, 1, "network", first=3) == 3
        assert self.agora.after_fault(3, 2, "network", first=3) == 4
        assert self.agora.after_fault(0, 1, "dns", first=3) == 1

    def test_an_explicit_list_is_walked_in_order(self) -> None:
        given = EndpointList.build(["http://127.0.0.1:1", "http://127.0.0.1:2"])
        assert given.after_fault(0, 2, "network") == 1
        assert given.all_loopback

    def test_an_empty_list_is_refused(self) -> None:
        with pytest.raises(EndpointError, match="empty"):
            EndpointList.build([])


def _connection_error(reason: Exception) -> Exception:
    import requests
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1")  # constructing a pool opens no connection
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/x", reason))


def test_a_name_resolution_failure_is_a_dns_fault() -> None:
    import socket

    from snapshot_resources.agora.client import _fault_kind

    assert _fault_kind(_connection_error(socket.gaierror(-2, "Name or service not known"))) == "dns"


def test_a_refused_connection_is_a_network_fault() -> None:
    from snapshot_resources.agora.client import _fault_kind

    assert _fault_kind(_connection_error(ConnectionRefusedError(111, "refused"))) == "network"

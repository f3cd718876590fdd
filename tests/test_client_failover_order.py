"""The client walks Agora's own domain list in S11's order (no network: a refusing transport).

A requests transport adapter stands in for the network, as httpx's MockTransport would: every
request fails the way the test says and its host is recorded.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import pytest
import requests
import urllib3
from requests.adapters import BaseAdapter

from snapshot_resources.agora import errors
from snapshot_resources.agora.client import AgoraClient
from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.agora.retry import RetryPolicy


class FailingTransport(BaseAdapter):
    def __init__(self, reason: Exception, hosts: list[str]) -> None:
        super().__init__()
        self.reason = reason
        self.hosts = hosts

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.hosts.append(urllib3.util.parse_url(request.url or "").host or "")
        pool = urllib3.HTTPConnectionPool("127.0.0.1")  # opens nothing
        raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/", self.reason))

    def close(self) -> None:
        pass


def walk(reason: Exception, region_hint: str | None = None, attempts: int = 5) -> list[str]:
    hosts: list[str] = []
    reset_registry()

    def session() -> requests.Session:
        s = requests.Session()
        s.mount("https://", FailingTransport(reason, hosts))
        return s

    client = AgoraClient("id", "secret", region_hint=region_hint, session_factory=session,
                         retry=RetryPolicy(scale=0.0, max_attempts=attempts), qps=1000)
    with client, pytest.raises(errors.AgoraTransportError):
        client.acquire("app-failover-order", {"cname": "c", "uid": "1"})
    return hosts


def test_a_network_fault_retries_the_primary_then_skips_to_the_regional_domains() -> None:
    assert walk(ConnectionRefusedError(111, "refused")) == [
        "api.agora.io", "api.agora.io", "api-us-west-1.agora.io", "api-us-east-1.agora.io",
        "api-us-west-1.sd-rtn.com",
    ]


def test_a_dns_fault_tries_the_other_primary_domain_next() -> None:
    assert walk(socket.gaierror(-2, "Name or service not known")) == [
        "api.agora.io", "api.agora.io", "api.sd-rtn.com", "api-us-west-1.agora.io",
        "api-us-east-1.agora.io",
    ]


def test_china_starts_on_sd_rtn_com() -> None:
    assert walk(ConnectionRefusedError(111, "refused"), "CN", attempts=3) == [
        "api.sd-rtn.com", "api.sd-rtn.com", "api-cn-east-1.sd-rtn.com",
    ]

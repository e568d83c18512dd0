"""URL sources refuse addresses inside the network unless explicitly allowed (no traffic:
only IP literals are resolved here)."""

from __future__ import annotations

import ipaddress

import pytest
from charterflow.ingest.errors import BadDocument
from charterflow.ingest.webpage import check_url

REFUSED = [
    "http://127.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://10.1.2.3:8080/admin",
    "http://192.168.0.1/",
    "http://172.16.5.4/",
    "http://100.64.0.1/",  # shared address space (carrier NAT)
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",  # the IPv6 metadata address (unique local)
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://224.0.0.1/",
    # IPv6 forms that embed an IPv4 address (issue 26, item 11): each passed before.
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated
    "http://[::ffff:0:a00:1]/",  # IPv4-translated 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(BadDocument, match="not fetched"):
        check_url(url, [])


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x.example/", "http:///nohost"])
def test_only_http_and_https_with_a_host(url: str) -> None:
    with pytest.raises(BadDocument, match="only http and https"):
        check_url(url, [])


def test_an_allowlist_lets_named_hosts_and_networks_through() -> None:
    assert check_url("http://127.0.0.1:9/x", ["127.0.0.1"]) == (
        "127.0.0.1",
        ipaddress.ip_address("127.0.0.1"),
    )
    assert check_url("http://10.1.2.3/", ["10.0.0.0/8"])[1] == ipaddress.ip_address("10.1.2.3")
    with pytest.raises(BadDocument):
        check_url("http://10.1.2.3/", ["192.168.0.0/16", "not-a-network"])


def test_a_public_address_passes() -> None:
    assert check_url("https://93.184.215.14/", [])[1] == ipaddress.ip_address("93.184.215.14")


@pytest.mark.parametrize("url", ["https://[64:ff9b::5db8:d70e]/", "https://[2002:5db8:d70e::1]/"])
def test_an_embedded_public_ipv4_passes(url: str) -> None:
    """NAT64 and 6to4 of a public address are judged by that address (93.184.215.14)."""
    assert check_url(url, [])[0] == url.split("[")[1].split("]")[0]

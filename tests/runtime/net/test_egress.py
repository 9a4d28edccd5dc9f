"""The egress policy: internal addresses are refused unless an administrator allows them."""

from __future__ import annotations

import pytest

from runtime.net.egress import EgressPolicy, EgressRefusedError
from runtime.steps.errors import PermanentStepError


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[fec0::1]/",  # site-local
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://localhost/",
    ],
)
def test_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(EgressRefusedError, match="internal address"):
        EgressPolicy().check(url)


def test_public_addresses_pass_and_are_pinned() -> None:
    target = EgressPolicy().check("https://93.184.216.34:8443/path?q=1")
    assert (target.host, target.port, target.address) == ("93.184.216.34", 8443, "93.184.216.34")
    assert target.connect_url == "https://93.184.216.34:8443/path?q=1"


def test_allowed_networks_and_host_patterns() -> None:
    policy = EgressPolicy.parse("10.1.0.0/16, 127.0.0.1, *.localhost, ::1")
    assert policy.check("http://10.1.2.3/").address == "10.1.2.3"
    assert policy.check("http://[::1]:8080/").connect_url == "http://[::1]:8080/"
    with pytest.raises(EgressRefusedError):
        policy.check("http://10.2.0.1/")


def test_bad_urls_and_entries() -> None:
    with pytest.raises(PermanentStepError, match="malformed"):
        EgressPolicy().check("http://[::1")
    with pytest.raises(PermanentStepError, match="user name or password in the URL"):
        EgressPolicy().check("http://user:pw@93.184.216.34/")
    with pytest.raises(PermanentStepError, match="must start with http"):
        EgressPolicy().check("file:///etc/passwd")
    with pytest.raises(PermanentStepError, match="port is not a number"):
        EgressPolicy().check("http://example.com:http/")
    with pytest.raises(ValueError, match=r"'300\.1\.1\.1' is neither"):
        EgressPolicy.parse("300.1.1.1")

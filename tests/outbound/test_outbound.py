"""The outbound boundary (idp/outbound.py), against real servers on 127.0.0.1: a total deadline,
a byte cap, no redirects, addresses checked after resolution and pinned, TLS keeping the name, a
proxy only when configured. docs/outbound.md describes the policies."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.errors import ConfigurationError
from idp.outbound import (
    Outbound,
    Policy,
    Redirected,
    Refused,
    TimedOut,
    TooLarge,
    Unreachable,
    refusal,
)
from idp.settings import Settings
from tests.support.agency_hosts import AgencyHost, Answer, ConnectProxy, resolver, tls_for

#: The policy for agency URLs while the issuer is on loopback (the suite's issuers are).
LOOPBACK_AGENCY = Policy("agency", deadline=1.0, max_bytes=1024, loopback=True, private=False)
#: The same, for an issuer on a real name: loopback is refused like any private address.
AGENCY = dataclasses.replace(LOOPBACK_AGENCY, loopback=False)


@pytest.fixture
def host() -> Iterator[AgencyHost]:
    served = AgencyHost()
    yield served
    served.close()


def test_a_server_dripping_its_answer_is_cut_off_at_the_total_deadline() -> None:
    # One byte every 0.2 s: each read is answered well within any per-read timeout, so only a
    # deadline over the whole exchange ends it (the old per-read 5 s timeout never fired).
    slow = AgencyHost(drip=0.2)
    slow.answer("/jwks", Answer(body=b'{"keys": []}' + b" " * 200))
    started = time.monotonic()
    try:
        with pytest.raises(TimedOut):
            Outbound(LOOPBACK_AGENCY).get(slow.url("/jwks"))
    finally:
        slow.close()
    took = time.monotonic() - started
    print(f"dripping host cut off after {took:.2f} s (deadline {LOOPBACK_AGENCY.deadline} s)")
    assert LOOPBACK_AGENCY.deadline <= took < LOOPBACK_AGENCY.deadline + 2.0  # loose: a loaded machine


def test_a_redirect_is_an_answer_never_followed(host: AgencyHost) -> None:
    elsewhere = host.answer("/elsewhere", Answer(body=b'{"keys": []}'))
    url = host.answer("/jwks", Answer(302, b"", {"Location": elsewhere}))
    with pytest.raises(Redirected) as redirected:
        Outbound(LOOPBACK_AGENCY).get(url)
    assert redirected.value.status == 302
    assert host.fetches("/jwks") == 1 and host.fetches("/elsewhere") == 0


@pytest.mark.parametrize("announced", [True, False], ids=["content_length", "until_close"])
def test_an_answer_above_the_cap_is_refused(host: AgencyHost, announced: bool) -> None:
    headers = {"Content-Type": "application/json"}
    if not announced:
        headers["Content-Length"] = ""  # no length: the body runs until the connection closes
    body = b"[" + b" " * LOOPBACK_AGENCY.max_bytes + b"]"
    url = host.answer("/big", Answer(body=body, headers=headers))
    with pytest.raises(TooLarge):
        Outbound(LOOPBACK_AGENCY).get(url)
    fits = host.answer("/fits", Answer(body=b"[" + b" " * (LOOPBACK_AGENCY.max_bytes - 2) + b"]"))
    assert Outbound(LOOPBACK_AGENCY).get_json(fits) == []


@pytest.mark.parametrize(
    "where",
    [
        "localhost",  # a name resolving to 127.0.0.1 (and ::1)
        "127.0.0.1",
        "127.1.2.3",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "0.0.0.0",  # noqa: S104 - the address Linux takes as "this host"
    ],
)
def test_loopback_targets_are_refused_unless_the_issuer_is_on_loopback(host: AgencyHost, where: str) -> None:
    url = host.answer("/jwks", Answer()).replace("127.0.0.1", where).replace("http:", "https:")
    with pytest.raises(Refused):
        Outbound(AGENCY).get(url)
    plain = url.replace("https:", "http:")
    with pytest.raises(Refused):
        Outbound(AGENCY).get(plain)
    assert host.connections == 0  # refused before any connection
    if where in ("localhost", "127.0.0.1"):
        assert Outbound(LOOPBACK_AGENCY).get(plain).status == 200  # the suite's agencies


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "169.254.10.10",  # link-local
        "100.64.0.1",  # shared address space
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fe80::1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:1::",  # 6to4 of 10.0.0.1
    ],
)
def test_private_and_metadata_addresses_are_refused_after_resolution(address: str) -> None:
    calls: list[str] = []
    outbound = Outbound(LOOPBACK_AGENCY, resolve=resolver({"jwks.agency.test": [address]}, calls))
    with pytest.raises(Refused):
        outbound.get("https://jwks.agency.test/jwks.json")
    assert calls == ["jwks.agency.test"]
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(Refused):
        outbound.get(f"https://{literal}/jwks.json")


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    calls: list[str] = []
    outbound = Outbound(AGENCY, resolve=resolver({"mixed.test": ["93.184.216.34", "10.1.2.3"]}, calls))
    with pytest.raises(Refused):
        outbound.get("https://mixed.test/jwks.json")


def test_the_operator_policy_reaches_private_networks_but_never_metadata() -> None:
    operator = Policy.operator(Settings())
    for allowed in ("10.0.0.1", "192.168.1.1", "127.0.0.1", "fd12::1", "93.184.216.34"):
        assert refusal(ipaddress.ip_address(allowed), operator) is None, allowed
    for refused in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "224.0.0.1", "0.0.0.0"):  # noqa: S104
        assert refusal(ipaddress.ip_address(refused), operator) is not None, refused


def test_the_checked_address_is_the_one_connected_to(host: AgencyHost) -> None:
    # A name resolves once per fetch; the connection goes to that answer's address. A second
    # lookup (DNS rebinding: public when checked, private when connected) never happens.
    calls: list[str] = []
    answers = {"jwks.agency.test": ["127.0.0.1"]}
    outbound = Outbound(LOOPBACK_AGENCY, resolve=resolver(answers, calls))
    host.answer("/jwks", Answer(body=b'{"keys": []}'))
    url = host.url("/jwks", host="jwks.agency.test")
    assert outbound.get_json(url) == {"keys": []}
    assert calls == ["jwks.agency.test"]
    assert host.connections == 1
    assert host.heard[-1].host == f"jwks.agency.test:{host.port}"  # Host keeps the name


def test_https_keeps_the_name_for_sni_the_certificate_and_host(tmp_path: Path) -> None:
    context, ca_file = tls_for("jwks.agency.test", tmp_path)
    secure = AgencyHost(tls=context)
    try:
        secure.answer("/jwks", Answer(body=b'{"keys": []}'))
        calls: list[str] = []
        resolve = resolver({"jwks.agency.test": ["127.0.0.1"]}, calls)
        policy = dataclasses.replace(LOOPBACK_AGENCY, ca_bundle=str(ca_file))
        url = secure.url("/jwks", host="jwks.agency.test")
        assert Outbound(policy, resolve=resolve).get_json(url) == {"keys": []}
        heard = secure.heard[-1]
        assert (heard.sni, heard.host) == ("jwks.agency.test", f"jwks.agency.test:{secure.port}")
        assert calls == ["jwks.agency.test"]

        # Without the bundle the self-signed certificate is not trusted: no answer is read.
        with pytest.raises(Unreachable):
            Outbound(LOOPBACK_AGENCY, resolve=resolve).get(url)
        # Reached by its address, the certificate (for the name) does not match.
        with pytest.raises(Unreachable):
            Outbound(policy).get(secure.url("/jwks"))
        assert len(secure.heard) == 1
    finally:
        secure.close()


def test_proxies_come_from_the_settings_never_from_the_environment(
    host: AgencyHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on the discard port
    url = host.answer("/jwks", Answer(body=b'{"keys": []}'))
    assert Outbound(LOOPBACK_AGENCY).get_json(url) == {"keys": []}

    proxy = ConnectProxy()
    try:
        via = dataclasses.replace(LOOPBACK_AGENCY, proxy=proxy.url)
        assert Outbound(via).get_json(host.url("/jwks", host="localhost")) == {"keys": []}
    finally:
        proxy.close()
    # The proxy was asked for the checked address, not the name (it resolves nothing).
    assert proxy.targets == [f"127.0.0.1:{host.port}"]
    assert host.heard[-1].host == f"localhost:{host.port}"


def test_the_settings_bound_the_boundary(tmp_path: Path) -> None:
    settings = Settings(outbound_deadline=2.5, outbound_max_bytes=4096, client_jwks_wait=1.0)
    agency = Policy.agency(settings)
    assert (agency.deadline, agency.max_bytes, agency.loopback, agency.private) == (2.5, 4096, True, False)
    assert not Policy.agency(Settings(issuer="https://idp.example")).loopback
    assert (
        Settings.from_env(
            {"HAWIYA_OUTBOUND_DEADLINE": "0.5", "HAWIYA_CLIENT_JWKS_WAIT": "0.25"}
        ).client_jwks_wait
        == 0.25
    )
    for bad in (
        {"outbound_deadline": 0},
        {"outbound_deadline": 120},
        {"outbound_max_bytes": 10},
        {"outbound_proxy": "socks5://127.0.0.1:1080"},
        {"outbound_proxy": "http://proxy.example:3128/path"},
        {"outbound_ca_bundle": str(tmp_path / "missing.pem")},
        {"client_jwks_wait": 6.0},  # beyond the 5 s deadline
        {"client_jwks_min_ttl": 7200},  # above the default ttl
        {"client_jwks_ttl": 10**6},  # above the most
        {"client_jwks_backoff": 0},
        {"client_jwks_backoff": 900},  # above the most
    ):
        with pytest.raises(ConfigurationError):
            Settings(**bad)  # type: ignore[arg-type]

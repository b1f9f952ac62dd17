"""Pure rules of delivery: back-off, TLP ceilings, SSRF address checks, signatures, policy."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import timedelta

import pytest

from vcisc.config import ConfigError, load_config
from vcisc.notify.addresses import UrlRejected, check_webhook_url, resolve_webhook
from vcisc.notify.policy import (
    EscalationLevel,
    address_allowed,
    backoff,
    carries_content,
    parse_ceiling,
    parse_duration,
    parse_networks,
    parse_policy,
    parse_reminders,
)
from vcisc.notify.signing import SignatureError, new_secret, sign, verify
from vcisc.tlp import Tlp

LOCAL = parse_networks(["127.0.0.1/32"])

# --- back-off -------------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    low = [backoff(n, 5, 3600, lambda: 0.0).total_seconds() for n in range(1, 13)]
    high = [backoff(n, 5, 3600, lambda: 0.999999).total_seconds() for n in range(1, 13)]
    assert low[:4] == [2.5, 5.0, 10.0, 20.0]  # half of 5·2^(n-1): the jitter floor
    assert [round(h) for h in high[:4]] == [5, 10, 20, 40]
    assert max(high) <= 3600 and low[-1] == 1800  # capped at one hour, floor half of it
    assert all(lo < hi for lo, hi in zip(low, high, strict=True))
    assert backoff(10_000, 5, 60, lambda: 0.5) == timedelta(seconds=45)  # no overflow
    with pytest.raises(ValueError):
        backoff(0, 5, 60, lambda: 0.5)


# --- TLP ceilings ---------------------------------------------------------------------------------


def test_channel_ceilings() -> None:
    assert carries_content(Tlp.GREEN, Tlp.GREEN) and carries_content(Tlp.CLEAR, Tlp.GREEN)
    assert not carries_content(Tlp.AMBER, Tlp.GREEN)
    assert carries_content(Tlp.AMBER, Tlp.AMBER_STRICT)
    assert not carries_content(Tlp.RED, Tlp.AMBER_STRICT)
    assert parse_ceiling("TLP:AMBER") is Tlp.AMBER and parse_ceiling("white") is Tlp.CLEAR
    with pytest.raises(ValueError, match="never sent over a channel"):
        parse_ceiling("red")


# --- SSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:10.0.0.1",  # IPv4-mapped private
    ],
)
def test_private_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), ())


def test_public_and_allow_listed_addresses_pass() -> None:
    assert address_allowed(ipaddress.ip_address("93.184.216.34"), ())
    assert address_allowed(ipaddress.ip_address("2606:4700::1111"), ())
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), LOCAL)
    assert not address_allowed(ipaddress.ip_address("127.0.0.2"), LOCAL)
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), LOCAL)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://localhost/hook", "not a public address"),
        ("https://api.localhost/hook", "not a public address"),
        ("https://2130706433/hook", "not a public address"),  # 127.0.0.1 written as a number
        ("https://127.1/hook", "not a public address"),
        ("https://[::1]:8443/hook", "not a public address"),
        ("http://hooks.cert.example/hook", "must use https://"),
        ("ftp://hooks.cert.example/hook", "must start with https://"),
        ("https://user:pw@hooks.cert.example/hook", "user name or password"),
        ("https:///nohost", "has no host"),
        ("https://hooks.example:99999/x", "not a valid URL"),
    ],
)
def test_webhook_urls_refused_when_configured(url: str, reason: str) -> None:
    with pytest.raises(UrlRejected, match=reason):
        check_webhook_url(url, ())


def test_webhook_urls_accepted_when_configured() -> None:
    check_webhook_url("https://hooks.cert.example/vcisc", ())  # a name: checked again at send
    check_webhook_url("https://93.184.216.34/vcisc", ())
    check_webhook_url("http://127.0.0.1:8080/hook", LOCAL)  # plain http only when allow-listed
    with pytest.raises(UrlRejected, match="https"):
        check_webhook_url("http://93.184.216.34/vcisc", LOCAL)


def test_resolution_checks_every_address() -> None:
    target = asyncio.run(resolve_webhook("http://127.0.0.1:9/x?y=1", LOCAL))
    assert target.connect_url == "http://127.0.0.1:9/x?y=1" and target.host_header == "127.0.0.1:9"
    # "localhost" resolves to loopback: refused unless allow-listed, even though it is a name.
    with pytest.raises(UrlRejected):
        asyncio.run(resolve_webhook("https://localhost/x", ()))
    target = asyncio.run(resolve_webhook("https://localhost:8443/x", LOCAL))
    assert str(target.address) == "127.0.0.1" and target.host_header == "localhost:8443"


# --- signatures -----------------------------------------------------------------------------------


def test_signature_round_trip_and_rejections() -> None:
    secret, other = new_secret(), new_secret()
    assert secret.startswith("whsec_") and secret != other
    body = b'{"id":"k"}'
    header = sign([secret], body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(secret, header, body, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(secret, header, body + b" ", now=1_700_000_100)  # tampered body
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(other, header, body, now=1_700_000_100)  # wrong secret
    with pytest.raises(SignatureError, match="replayed"):
        verify(secret, header, body, now=1_700_000_000 + 301)  # too old: a replay
    with pytest.raises(SignatureError, match="expected"):
        verify(secret, "v1=abc", body, now=1_700_000_000)
    # The timestamp is signed too: moving it forward breaks the signature.
    forged = header.replace("t=1700000000", "t=1700000200")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(secret, forged, body, now=1_700_000_200)
    # During a rotation both secrets sign; a receiver with either accepts.
    both = sign([other, secret], body, 1_700_000_000)
    assert verify(secret, both, body, now=1_700_000_000) and verify(
        other, both, body, now=1_700_000_000
    )


# --- escalation policy ----------------------------------------------------------------------------


def test_policy_and_reminders_parse() -> None:
    rules = parse_policy("secretariat+1h, rota, duty-desk+30m, rota+15m")
    assert [(r.level, r.delay) for r in rules] == [
        (EscalationLevel.ROTA, timedelta(0)),
        (EscalationLevel.ROTA, timedelta(minutes=15)),
        (EscalationLevel.DUTY_DESK, timedelta(minutes=30)),
        (EscalationLevel.SECRETARIAT, timedelta(hours=1)),
    ]
    assert rules[1].key == "rota+900s"
    assert parse_policy("") == ()
    assert parse_reminders("15m,1h") == (timedelta(hours=1), timedelta(minutes=15))
    assert parse_duration("90s") == timedelta(seconds=90) and parse_duration("2d").days == 2
    with pytest.raises(ValueError, match="unknown escalation level 'boss'"):
        parse_policy("rota,boss+1h")
    with pytest.raises(ValueError, match="appears twice"):
        parse_policy("rota,rota+0m")
    with pytest.raises(ValueError, match="not a duration"):
        parse_reminders("soon")


def test_bad_delivery_settings_stop_start_up() -> None:
    base = {"VCISC_DATA_DIR": "/tmp/vcisc-config-test"}
    for name, value, needle in [
        ("VCISC_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32,intranet", "'intranet' is not a network"),
        ("VCISC_EMAIL_TLP_CEILING", "red", "never sent over a channel"),
        ("VCISC_ESCALATION_POLICY", "rota+soon", "not a duration"),
        ("VCISC_MAIL_FROM", "not an address", "not an e-mail address"),
        ("VCISC_DELIVERY_LEASE_SECONDS", "5", "VCISC_DELIVERY_LEASE_SECONDS"),
        ("VCISC_SMTP_SECURITY", "maybe", "VCISC_SMTP_SECURITY"),
        ("VCISC_PUBLIC_URL", "vcisc.example", "VCISC_PUBLIC_URL"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            load_config({**base, name: value})
    config = load_config(
        {
            **base,
            "VCISC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32, 10.20.0.0/16",
            "VCISC_SMTP_HOST": "",
        }
    )
    assert config.webhook_allowed_networks == ["127.0.0.1/32", "10.20.0.0/16"]
    assert config.smtp_host is None and config.email_tlp_ceiling == "green"

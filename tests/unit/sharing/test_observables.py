"""Normalisation of indicator values, their correlation keys and CIDR containment.

Expected canonical forms are written out by hand from the rules in the standards cited
(RFC 5952 for IPv6, RFC 3986 §6.2.2 for URLs, IDNA 2008/UTS #46 for names, STIX 2.1 §6.13 for
registry hives), not computed with the code under test.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vcisc.sharing.observables import (
    TYPE_INFO,
    CorrelationKey,
    InvalidObservable,
    Observable,
    ObservableType,
    address_range,
    cidr_contains,
    guess_hash_type,
    guess_type,
    normalise,
    parse_observable,
    refang,
)

T = ObservableType


@pytest.mark.parametrize(
    ("kind", "raw", "canonical"),
    [
        # IPv4 / IPv6 (RFC 5952: lower case, longest zero run compressed, no leading zeros)
        (T.IPV4, " 198.51.100.7 ", "198.51.100.7"),
        (T.IPV4, "198.51.100[.]7", "198.51.100.7"),
        (T.IPV4, "198[.]51[.]100[.]7", "198.51.100.7"),
        (T.IPV6, "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        (T.IPV6, "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        (T.IPV6, "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        (T.IPV6, "[2001:db8::1]", "2001:db8::1"),
        (T.IPV6, "::FFFF:198.51.100.7", "::ffff:c633:6407"),
        # CIDR
        (T.CIDR, "198.51.100.0/24", "198.51.100.0/24"),
        (T.CIDR, "2001:DB8::/32", "2001:db8::/32"),
        (T.CIDR, "10.0.0.0/08", None),
        (T.CIDR, "198.51.100.7/32", "198.51.100.7/32"),
        # DNS names: case, root dot, IDN → punycode, full-width dots (UTS #46 mapping)
        (T.DOMAIN, "Evil.EXAMPLE.com.", "evil.example.com"),
        (T.DOMAIN, "evil[.]example(.)com", "evil.example.com"),
        (T.DOMAIN, "bücher.example", "xn--bcher-kva.example"),
        (T.DOMAIN, "XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
        (T.DOMAIN, "MÜNCHEN.de", "xn--mnchen-3ya.de"),
        (T.DOMAIN, "faß.de", "xn--fa-hia.de"),
        (T.DOMAIN, "example。com", "example.com"),
        (T.DOMAIN, "_dmarc.example.com", "_dmarc.example.com"),
        (T.HOSTNAME, "DC01", "dc01"),
        (T.HOSTNAME, "mail.Example.org", "mail.example.org"),
        # URLs (RFC 3986 §6.2.2, §6.2.3)
        (T.URL, "HTTP://Example.COM", "http://example.com/"),
        (T.URL, "https://example.com:443/a", "https://example.com/a"),
        (T.URL, "http://example.com:80/a", "http://example.com/a"),
        (T.URL, "http://example.com:8080/a", "http://example.com:8080/a"),
        (T.URL, "http://example.com:0080/a", "http://example.com/a"),
        (T.URL, "https://example.com/a#fragment", "https://example.com/a"),
        (T.URL, "https://example.com/a%2fb", "https://example.com/a%2Fb"),
        (T.URL, "https://example.com/%7Euser/%41", "https://example.com/~user/A"),
        (T.URL, "https://example.com/a/../b/./c", "https://example.com/a/../b/./c"),
        (T.URL, "https://example.com/a b", "https://example.com/a%20b"),
        (T.URL, "https://example.com/ä", "https://example.com/%C3%A4"),
        (T.URL, "https://example.com/?b=2&a=1", "https://example.com/?b=2&a=1"),
        (T.URL, "https://example.com/?q=a+b%26c", "https://example.com/?q=a+b%26c"),
        (T.URL, "https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        (T.URL, "http://[2001:DB8::0:1]:80/", "http://[2001:db8::1]/"),
        (T.URL, "http://198.51.100.7:8080", "http://198.51.100.7:8080/"),
        (T.URL, "hxxps://evil[.]example[.]com/p", "https://evil.example.com/p"),
        (T.URL, "hXXp[:]//evil[.]example/p", "http://evil.example/p"),
        (T.URL, "https://User:Pa%73s@Example.com/", "https://User:Pass@example.com/"),
        (T.URL, "ftp://files.example:21/x", "ftp://files.example/x"),
        (T.URL, "https://example.com.:443/", "https://example.com/"),
        # e-mail: domain normalised, local part kept
        (T.EMAIL, "Bob.Smith@München.DE", "Bob.Smith@xn--mnchen-3ya.de"),
        (T.EMAIL, "bob[@]example[.]org", "bob@example.org"),
        (T.EMAIL, "bob(at)example(dot)org", "bob@example.org"),
        # hashes
        (T.MD5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        (
            T.SHA1,
            "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ),
        (
            T.SHA256,
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (T.SHA512, "CF83" + "E1" * 62, "cf83" + "e1" * 62),
        (T.JA3, "E7D705A3286E19EA42F587B344EE6865", "e7d705a3286e19ea42f587b344ee6865"),
        (
            T.SSDEEP,
            "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C",
            "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C",
        ),
        (T.SSDEEP, '96:abc+/:def,"sample.exe"', "96:abc+/:def"),
        # ASN, incl. asdot (RFC 5396)
        (T.ASN, "AS13335", "AS13335"),
        (T.ASN, "asn 13335", "AS13335"),
        (T.ASN, "13335", "AS13335"),
        (T.ASN, "1.10", "AS65546"),
        (T.ASN, "AS4294967295", "AS4294967295"),
        # registry keys: hive expanded (STIX 2.1 §6.13), case preserved, separators collapsed
        (T.REGISTRY_KEY, "hklm\\Software\\Run", "HKEY_LOCAL_MACHINE\\Software\\Run"),
        (T.REGISTRY_KEY, "HKCU\\\\Software\\\\Run\\", "HKEY_CURRENT_USER\\Software\\Run"),
        (T.REGISTRY_KEY, "HKCR\\.exe", "HKEY_CLASSES_ROOT\\.exe"),
        (T.REGISTRY_KEY, "HKEY_USERS/S-1-5-18", "HKEY_USERS\\S-1-5-18"),
        # kept exactly
        (T.FILENAME, "Invoice.PDF.exe ", "Invoice.PDF.exe "),
        (T.FILENAME, "it's [1].exe", "it's [1].exe"),
        (T.MUTEX, "Global\\MsWinZonesCacheCounterMutexA", "Global\\MsWinZonesCacheCounterMutexA"),
    ],
)
def test_canonical_forms(kind: ObservableType, raw: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(InvalidObservable):
            normalise(kind, raw)
        return
    observable = normalise(kind, raw)
    assert observable == Observable(kind, canonical)
    # Normalisation is idempotent: a canonical value is its own canonical form.
    assert normalise(kind, observable.value) == observable


@pytest.mark.parametrize(
    ("kind", "raw", "reason_part"),
    [
        (T.IPV4, "010.1.1.1", "Leading zeros"),
        (T.IPV4, "256.1.1.1", "not an IPv4"),
        (T.IPV4, "1.2.3", "not an IPv4"),
        (T.IPV4, "", "empty"),
        (T.IPV6, "fe80::1%eth0", "zone"),
        (T.IPV6, "2001:db8::g", "not an IPv6"),
        (T.CIDR, "198.51.100.7/24", "host bits are set; the network is 198.51.100.0/24"),
        (T.CIDR, "198.51.100.0", "prefix length"),
        (T.CIDR, "198.51.100.0/33", "198.51.100.0/33"),
        (T.CIDR, "198.51.100.0/-1", "not a plain decimal"),
        (T.DOMAIN, "a..b.com", "empty label"),
        (T.DOMAIN, "-evil.com", "hyphen"),
        (T.DOMAIN, "evil-.com", "hyphen"),
        (T.DOMAIN, "ex ample.com", "may hold only"),
        (T.DOMAIN, "xn--zz.com", "A-label"),
        (T.DOMAIN, "a\u200db.com", "internationalised"),
        (T.DOMAIN, "com", "at least two labels"),
        (T.DOMAIN, "198.51.100.7", "IP address"),
        (T.DOMAIN, "a" * 64 + ".com", "longer than 63"),
        (T.DOMAIN, ".".join(["a" * 60] * 5), "253"),
        (T.DOMAIN, "evil\x00.com", "control"),
        (T.URL, "evil.example/payload", "scheme"),
        (T.URL, "mailto:bob@example.org", "authority"),
        (T.URL, "http:///path", "no host"),
        (T.URL, "http://example.com:99999/", "port"),
        (T.URL, "http://example.com:8o/", "port"),
        (T.URL, "http://example.com/%zz", "does not start an escape"),
        (T.URL, "http://exa mple.com/", "host"),
        (T.URL, "http://[2001:db8::1/", "unclosed"),
        (T.URL, "http://300.1.1.1/", "IPv4"),
        (T.URL, "http://example.com/" + "a" * 20000, "longer than"),
        (T.EMAIL, "no-at-sign.example", "local-part@domain"),
        (T.EMAIL, "bob@", "local-part@domain"),
        (T.EMAIL, "bo b@example.org", "local part"),
        (T.EMAIL, "bob@[198.51.100.7]", "address literals"),
        (T.EMAIL, "bob@exa..mple.org", "domain part"),
        (T.MD5, "d41d8cd98f00b204e9800998ecf8427", "expected 32 hex digits, got 31"),
        (
            T.MD5,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "the length of a sha256",
        ),
        (T.SHA1, "zz39a3ee5e6b4b0d3255bfef95601890afd80709", "hexadecimal"),
        (T.SSDEEP, "5:abc:def", "3·2ⁿ"),
        (T.SSDEEP, "not ssdeep", "blocksize:hash:hash"),
        (T.ASN, "AS-13335", "AS<number>"),
        (T.ASN, "AS4294967296", "32-bit"),
        (T.ASN, "70000.1", "asdot"),
        (T.REGISTRY_KEY, "Software\\Run", "hive"),
        (T.REGISTRY_KEY, "\\\\", "empty"),
        (T.FILENAME, "C:\\Windows\\evil.exe", "path"),
        (T.FILENAME, "   ", "empty"),
        (T.FILENAME, "a\nb", "control"),
        (T.MUTEX, "", "empty"),
    ],
)
def test_invalid_values_name_the_value_and_the_reason(
    kind: ObservableType, raw: str, reason_part: str
) -> None:
    with pytest.raises(InvalidObservable) as caught:
        normalise(kind, raw)
    assert reason_part in caught.value.reason
    assert caught.value.value == raw
    assert caught.value.type is kind
    message = str(caught.value)
    assert kind.value in message
    assert repr(raw[:200]) in message or "…" in message


def test_unknown_type_is_refused_with_the_list_of_types() -> None:
    with pytest.raises(InvalidObservable, match=r"unknown type 'ip'.*ipv4, ipv6"):
        normalise("ip", "198.51.100.7")


def test_non_strict_cidr_keeps_the_network() -> None:
    assert normalise(T.CIDR, "198.51.100.7/24", strict_cidr=False).value == "198.51.100.0/24"


def test_type_names_are_accepted_as_strings() -> None:
    assert normalise("registry-key", "HKLM\\x").type is T.REGISTRY_KEY


def test_defanging_is_only_undone_for_network_types() -> None:
    # "[.]" is a valid part of a file name; a registry key may contain "\\.".
    assert normalise(T.FILENAME, "report[.]pdf").value == "report[.]pdf"
    assert normalise(T.DOMAIN, "evil[.]example").value == "evil.example"


def test_defanged_false_refuses_defanged_input() -> None:
    with pytest.raises(InvalidObservable):
        normalise(T.DOMAIN, "evil[.]example", defanged=False)


@pytest.mark.parametrize(
    ("raw", "fanged"),
    [
        ("hxxp://evil[.]example/x", "http://evil.example/x"),
        ("hxxps[:]//evil[.]example", "https://evil.example"),
        ("HXXPS://evil(.)example", "https://evil.example"),
        ("fxp://files[.]example", "ftp://files.example"),
        ("evil [.] example {.} org", "evil.example.org"),
        ("evil[dot]example", "evil.example"),
        ("bob[@]example[.]org", "bob@example.org"),
        ("bob[at]example[.]org", "bob@example.org"),
        ("198\\.51\\.100\\.7", "198.51.100.7"),
        ("https://plain.example/x", "https://plain.example/x"),
        ("hat.example", "hat.example"),
    ],
)
def test_refang(raw: str, fanged: str) -> None:
    assert refang(raw) == fanged


@given(st.text(alphabet=st.characters(blacklist_characters="[](){}\\"), max_size=50))
def test_refang_leaves_text_without_markers_alone(text: str) -> None:
    if text.lstrip()[:1] in ("h", "H", "f", "F"):
        return  # may start with a defanged scheme
    assert refang(text) == text


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("d41d8cd98f00b204e9800998ecf8427e", T.MD5),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", T.SHA1),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", T.SHA256),
        ("CF83" * 32, T.SHA512),
    ],
)
def test_hash_type_is_guessed_from_the_length(value: str, kind: ObservableType) -> None:
    assert guess_hash_type(value) is kind
    assert guess_type(value) is kind


@pytest.mark.parametrize("value", ["abc", "d41d8cd98f00b204e9800998ecf8427e0", "xyz" * 11, ""])
def test_hash_guess_refuses_other_lengths_and_non_hex(value: str) -> None:
    with pytest.raises(InvalidObservable):
        guess_hash_type(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("https://evil.example/x", T.URL),
        ("hxxps://evil[.]example/x", T.URL),
        ("bob@example.org", T.EMAIL),
        ("198.51.100.7", T.IPV4),
        ("198.51.100[.]7", T.IPV4),
        ("198.51.100.0/24", T.CIDR),
        ("2001:db8::/32", T.CIDR),
        ("2001:db8::1", T.IPV6),
        ("AS13335", T.ASN),
        ("3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C", T.SSDEEP),
        ("HKLM\\Software\\Run", T.REGISTRY_KEY),
        ("evil.example", T.DOMAIN),
    ],
)
def test_type_guessing(value: str, kind: ObservableType) -> None:
    assert guess_type(value) is kind
    assert parse_observable(value).type is kind


@pytest.mark.parametrize("value", ["", "   ", "justaword", "fe80::1%eth0"])
def test_type_guessing_gives_up_with_a_reason(value: str) -> None:
    with pytest.raises(InvalidObservable):
        parse_observable(value)


# --- correlation keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((T.DOMAIN, "Evil.Example"), (T.HOSTNAME, "evil.example.")),
        ((T.IPV4, "198.51.100.7"), (T.IPV6, "::ffff:198.51.100.7")),
        ((T.IPV4, "198.51.100.7"), (T.CIDR, "198.51.100.7/32")),
        ((T.IPV6, "2001:db8::1"), (T.CIDR, "2001:DB8::1/128")),
        ((T.EMAIL, "Bob@Example.org"), (T.EMAIL, "bob@example.ORG")),
        (
            (T.REGISTRY_KEY, "HKLM\\Software\\RUN"),
            (T.REGISTRY_KEY, "hkey_local_machine\\software\\run"),
        ),
        ((T.ASN, "AS13335"), (T.ASN, "13335")),
        ((T.URL, "HTTPS://Evil.example:443/a"), (T.URL, "https://evil.example/a#x")),
        ((T.MD5, "D41D8CD98F00B204E9800998ECF8427E"), (T.MD5, "d41d8cd98f00b204e9800998ecf8427e")),
    ],
)
def test_same_indicator_same_correlation_key(
    left: tuple[ObservableType, str], right: tuple[ObservableType, str]
) -> None:
    assert normalise(*left).correlation_key == normalise(*right).correlation_key


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((T.URL, "https://evil.example/a"), (T.URL, "https://evil.example/A")),
        ((T.URL, "https://evil.example/a%2Fb"), (T.URL, "https://evil.example/a/b")),
        ((T.URL, "http://evil.example/"), (T.URL, "https://evil.example/")),
        ((T.FILENAME, "evil.exe"), (T.FILENAME, "EVIL.EXE")),
        ((T.MUTEX, "abc"), (T.MUTEX, "ABC")),
        ((T.CIDR, "198.51.100.0/24"), (T.IPV4, "198.51.100.0")),
        ((T.MD5, "d41d8cd98f00b204e9800998ecf8427e"), (T.JA3, "d41d8cd98f00b204e9800998ecf8427e")),
        (
            (T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856"),
        ),
    ],
)
def test_different_indicators_different_keys(
    left: tuple[ObservableType, str], right: tuple[ObservableType, str]
) -> None:
    assert normalise(*left).correlation_key != normalise(*right).correlation_key


def test_correlation_key_text_is_family_and_value() -> None:
    key = normalise(T.HOSTNAME, "Mail.Example").correlation_key
    assert key == CorrelationKey("dns", "mail.example")
    assert str(key) == "dns:mail.example"


def test_every_type_has_mappings() -> None:
    assert set(TYPE_INFO) == set(ObservableType)
    for info in TYPE_INFO.values():
        assert info.misp_type and info.misp_category and info.family
    assert normalise(T.CIDR, "2001:db8::/32").stix_object == "ipv6-addr"
    assert normalise(T.CIDR, "10.0.0.0/8").stix_object == "ipv4-addr"


# --- CIDR containment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "address", "inside"),
    [
        ("10.0.0.0/8", "10.255.255.255", True),
        ("10.0.0.0/8", "11.0.0.0", False),
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("10.1.2.3/8", "10.9.9.9", True),  # strings are normalised non-strictly
        ("198.51.100.0/24", "198.51.100.0/25", True),
        ("198.51.100.0/25", "198.51.100.0/24", False),
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/8", "2001:db8::1", False),
        ("198.51.100.7", "198.51.100.7", True),
        ("0.0.0.0/0", "203.0.113.9", True),
    ],
)
def test_cidr_contains(network: str, address: str, inside: bool) -> None:
    assert cidr_contains(network, address) is inside


def test_cidr_contains_accepts_observables_and_refuses_non_ips() -> None:
    assert cidr_contains(normalise(T.CIDR, "10.0.0.0/8"), normalise(T.IPV4, "10.0.0.1"))
    with pytest.raises(InvalidObservable):
        cidr_contains("10.0.0.0/8", normalise(T.DOMAIN, "evil.example"))
    with pytest.raises(InvalidObservable):
        cidr_contains(normalise(T.DOMAIN, "evil.example"), "10.0.0.1")


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_cidr_contains_agrees_with_ipaddress(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert cidr_contains(str(network), str(address))
    outside = int(network.broadcast_address) + 1
    if outside < 2**32:
        assert not cidr_contains(str(network), str(ipaddress.IPv4Address(outside)))


@given(st.ip_addresses(v=6))
def test_ipv6_canonical_form_is_rfc5952(address: ipaddress.IPv6Address) -> None:
    if address.scope_id is not None:
        return
    assert normalise(T.IPV6, address.exploded.upper()).value == address.compressed


@given(st.text(max_size=80))
def test_normalise_never_crashes_on_arbitrary_text(text: str) -> None:
    for kind in ObservableType:
        try:
            result = normalise(kind, text)
        except InvalidObservable:
            continue
        assert normalise(kind, result.value) == result


@given(
    st.ip_addresses(v=4) | st.ip_addresses(v=6),
    st.ip_addresses(v=4) | st.ip_addresses(v=6),
    st.integers(min_value=0, max_value=128),
)
def test_address_ranges_compare_as_cidr_containment(
    net_address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    prefix: int,
) -> None:
    """Containment by comparing the sortable range text (what the database index does) agrees
    with ipaddress, across families."""
    length = min(prefix, net_address.max_prefixlen)
    network = ipaddress.ip_network(f"{net_address}/{length}", strict=False)
    net = normalise(T.CIDR, str(network))
    addr = normalise(T.IPV4 if address.version == 4 else T.IPV6, str(address))
    (net_low, net_high), (low, high) = address_range(net), address_range(addr)  # type: ignore[misc]
    assert low == high and net_low <= net_high
    assert (net_low <= low and high <= net_high) is cidr_contains(net, addr)


def test_address_range_is_none_for_other_types() -> None:
    assert address_range(normalise(T.DOMAIN, "evil.example")) is None
    assert address_range(normalise(T.IPV6, "::ffff:10.1.2.3")) == ("40a010203", "40a010203")

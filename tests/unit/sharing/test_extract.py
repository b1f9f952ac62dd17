"""Indicators from free text: ioc-finder's candidates, normalised, invalid ones reported."""

from __future__ import annotations

import pytest

from vcisc.sharing.extract import MAX_TEXT_LENGTH, extract_observables
from vcisc.sharing.observables import Observable, ObservableType

T = ObservableType

REPORT = """
At 03:12 UTC the loader beaconed to hxxps://Update[.]Bücher-Cdn[.]com:443/gate.php?id=7#x
and to 198.51.100[.]23 (also seen: 2001:DB8:0:0::17). Scanning came from 203.0.113.77/24.
Dropped file SHA-256 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855,
md5 d41d8cd98f00b204e9800998ecf8427e; persistence under HKLM\\Software\\Microsoft\\Windows\\Run.
Phishing from billing[@]evil-invoices[.]net; infrastructure in AS64500 and ASN 64501.
The same domain again: update.xn--bcher-cdn-q9a.com.
"""


def test_report_text_yields_normalised_indicators() -> None:
    """(ioc-finder recognises domains only under real TLDs, hence .com and .net here.)"""
    result = extract_observables(REPORT)
    found = set(result.observables)
    expected = {
        Observable(T.URL, "https://update.xn--bcher-cdn-q9a.com/gate.php?id=7"),
        Observable(T.IPV4, "198.51.100.23"),
        Observable(T.IPV6, "2001:db8::17"),
        Observable(T.CIDR, "203.0.113.0/24"),
        Observable(T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        Observable(T.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
        Observable(T.REGISTRY_KEY, "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\Run"),
        Observable(T.EMAIL, "billing@evil-invoices.net"),
        Observable(T.ASN, "AS64500"),
        Observable(T.ASN, "AS64501"),
    }
    assert expected <= found, expected - found
    # No scheme-less URLs, and no parts of URLs / addresses as separate indicators.
    assert Observable(T.DOMAIN, "evil-invoices.net") not in found
    assert Observable(T.IPV4, "203.0.113.77") not in found


def test_duplicates_by_correlation_key_are_kept_once() -> None:
    # ioc-finder only knows real TLDs, so these use .com.
    text = "evil-cdn.com EVIL-CDN.COM evil-cdn[.]com evil-cdn.com."
    result = extract_observables(text, types={T.DOMAIN})
    assert result.observables == (Observable(T.DOMAIN, "evil-cdn.com"),)


def test_type_filter() -> None:
    result = extract_observables(REPORT, types={T.MD5, T.SHA256})
    assert {o.type for o in result.observables} == {T.MD5, T.SHA256}
    assert extract_observables(REPORT, types={T.MUTEX}).observables == ()


def test_candidates_that_fail_normalisation_are_reported() -> None:
    # ioc-finder takes "3:abc:def" for an ssdeep hash; 5 is not a valid block size.
    result = extract_observables(
        "hash 5:abcdefgh:ijklmnop and 3:abcdefgh:ijklmnop", types={T.SSDEEP}
    )
    assert result.observables == (Observable(T.SSDEEP, "3:abcdefgh:ijklmnop"),)
    (rejected,) = result.rejected
    assert rejected.type is T.SSDEEP and "3·2ⁿ" in rejected.reason


def test_text_length_is_bounded() -> None:
    with pytest.raises(ValueError, match="split it"):
        extract_observables("a" * (MAX_TEXT_LENGTH + 1))


def test_empty_text() -> None:
    result = extract_observables("")
    assert result.observables == () and result.rejected == ()

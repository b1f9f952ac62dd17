"""STIX patterns (STIX 2.1 §9): built from observables, read back, validated fast.

The central property: the fast path never calls a pattern valid that stix2-validator's own
pattern check rejects. Hypothesis generates simple-form patterns with awkward literals, hash
values of every length, keywords as path steps and odd spacing, and compares the verdicts.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions
from stix2validator.v21 import musts

from vcisc.sharing.observables import InvalidObservable, Observable, ObservableType, normalise
from vcisc.sharing.stix.patterns import (
    PatternValidator,
    _fast_valid,
    escape_string,
    observable_from_pattern,
    pattern_for,
)

T = ObservableType
OPTIONS = ValidationOptions(version="2.1")


def reference_errors(pattern: str) -> list[str]:
    instance = {
        "type": "indicator",
        "id": "indicator--00000000-0000-4000-8000-000000000000",
        "pattern_type": "stix",
        "pattern": pattern,
        "spec_version": "2.1",
    }
    try:
        return [str(e) for e in musts.patterns(instance, OPTIONS)]
    except Exception as exc:  # the reference crashes on some inputs: that is a rejection
        return [repr(exc)]


@pytest.mark.parametrize(
    ("kind", "value", "pattern"),
    [
        (T.IPV4, "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
        (T.IPV6, "2001:db8::1", "[ipv6-addr:value = '2001:db8::1']"),
        (T.CIDR, "10.0.0.0/8", "[ipv4-addr:value ISSUBSET '10.0.0.0/8']"),
        (T.CIDR, "2001:db8::/32", "[ipv6-addr:value ISSUBSET '2001:db8::/32']"),
        (T.DOMAIN, "evil.example", "[domain-name:value = 'evil.example']"),
        (T.HOSTNAME, "mail.evil.example", "[domain-name:value = 'mail.evil.example']"),
        (T.URL, "https://evil.example/a?b=1", "[url:value = 'https://evil.example/a?b=1']"),
        (T.EMAIL, "bob@evil.example", "[email-addr:value = 'bob@evil.example']"),
        (
            T.MD5,
            "d41d8cd98f00b204e9800998ecf8427e",
            "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
        ),
        (
            T.SHA1,
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
        ),
        (
            T.SHA256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "[file:hashes.'SHA-256' = "
            "'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
        ),
        (
            T.SSDEEP,
            "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C",
            "[file:hashes.SSDEEP = '3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C']",
        ),
        (T.FILENAME, "it's.exe", "[file:name = 'it\\'s.exe']"),
        (T.ASN, "AS13335", "[autonomous-system:number = 13335]"),
        (T.MUTEX, "Global\\mtx", "[mutex:name = 'Global\\\\mtx']"),
        (
            T.REGISTRY_KEY,
            "HKEY_LOCAL_MACHINE\\Run",
            "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Run']",
        ),
    ],
)
def test_patterns_from_observables_validate_and_read_back(
    kind: ObservableType, value: str, pattern: str
) -> None:
    observable = normalise(kind, value)
    assert pattern_for(observable) == pattern
    assert reference_errors(pattern) == []
    assert PatternValidator().errors(pattern) == ()
    back = observable_from_pattern(pattern)
    expected = observable if kind is not T.HOSTNAME else Observable(T.DOMAIN, value)
    assert back == expected


def test_ja3_has_no_stix_pattern() -> None:
    assert pattern_for(normalise(T.JA3, "e7d705a3286e19ea42f587b344ee6865")) is None


def test_escape_string() -> None:
    assert escape_string("a'b\\c") == "a\\'b\\\\c"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ipv4-addr:value = '198.51.100.0/24']", Observable(T.CIDR, "198.51.100.0/24")),
        ("[domain-name:value = 'Evil.Example']", Observable(T.DOMAIN, "evil.example")),
        (
            "[file:hashes.sha256 = "
            "'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855']",
            Observable(
                T.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
        ),
        ("[domain-name:value = 'a' OR domain-name:value = 'b']", None),
        ("[url:value = 'x'] AND [url:value = 'y']", None),
        ("[domain-name:value LIKE '%.evil.example']", None),
        ("[ipv4-addr:value != '198.51.100.7']", None),
        ("[file:size = 5]", None),
        ("[process:name = 'evil.exe']", None),
    ],
)
def test_observable_from_pattern(pattern: str, expected: Observable | None) -> None:
    assert observable_from_pattern(pattern) == expected


def test_simple_pattern_with_an_invalid_value_is_reported() -> None:
    with pytest.raises(InvalidObservable):
        observable_from_pattern("[ipv4-addr:value = '999.1.1.1']")
    check = PatternValidator().check("[ipv4-addr:value = '999.1.1.1']")
    assert check.errors == ()  # valid STIX …
    assert check.observable is None and check.value_problem  # … but not a valid indicator


@pytest.mark.parametrize(
    "pattern",
    [
        "ipv4-addr:value = '198.51.100.7'",  # no brackets
        "[ipv4-addr:value = '198.51.100.7'",  # unclosed
        "[ipv4-addr:value = 198.51.100.7]",  # unquoted
        "[ipv4-addr:value = '\\a']",  # bad escape
        "[file:hashes.MD5 = 'zz']",  # not an MD5
        "[file:hashes.'SHA-256' = 'abc']",
        "[file:name = 'a''b']",
        "[file:true = 'x']",
        "[autonomous-system:number = 013]",
        "[file:hashes[0] = 1]",  # crashes the reference validator: still an error, not a crash
        "[url:value = 'x'] AND",
        "",
    ],
)
def test_invalid_patterns_get_the_validators_reason(pattern: str) -> None:
    validator = PatternValidator()
    errors = validator.errors(pattern)
    assert errors, pattern
    assert reference_errors(pattern)  # the reference agrees
    assert validator.stats.fast == 0


def test_reference_verdicts_are_cached() -> None:
    validator = PatternValidator(cache_size=2)
    complex_pattern = "[file:size > 10] WITHIN 5 SECONDS"
    assert validator.errors(complex_pattern) == ()
    assert validator.errors(complex_pattern) == ()
    assert (validator.stats.reference, validator.stats.cached) == (1, 1)
    validator.errors("[file:size > 11]")
    validator.errors("[file:size > 12]")
    validator.errors(complex_pattern)  # evicted (least recently used), validated again
    assert validator.stats.reference == 4


def test_fast_path_takes_the_common_forms() -> None:
    validator = PatternValidator()
    for pattern in [
        "[ipv4-addr:value = '198.51.100.7']",
        "[ ipv4-addr:value='198.51.100.7' ]",
        "[domain-name:value = 'a' OR domain-name:value = 'b']",
        "[url:value = 'x'] FOLLOWEDBY [url:value = 'y']",
        "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e' AND file:name = 'x']",
        "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
    ]:
        assert validator.errors(pattern) == ()
    assert validator.stats.fast == 6 and validator.stats.reference == 0


# --- the fast path agrees with the reference ----------------------------------------------

_TYPES_AND_PATHS = st.sampled_from(
    [
        ("ipv4-addr", "value"),
        ("domain-name", "value"),
        ("url", "value"),
        ("file", "name"),
        ("file", "hashes.MD5"),
        ("file", "hashes.'SHA-256'"),
        ("file", "hashes.'SHA-1'"),
        ("file", "hashes.sha512"),
        ("file", "hashes.SSDEEP"),
        ("file", "hashes.'x-custom'"),
        ("file", "size"),
        ("file", "true"),
        ("file", "hashes.AND"),
        ("process", "name"),
        ("x-custom", "value"),
        ("email-addr", "value"),
        ("windows-registry-key", "key"),
        ("autonomous-system", "number"),
        ("network-traffic", "extensions.'http-request-ext'.request_method"),
    ]
)
_STRING_BODY = st.text(
    alphabet=st.sampled_from(list("abcdef0123456789ABCDEFxyz '\\./:+-_%\nä")), max_size=70
)
_HEXISH = st.integers(min_value=0, max_value=130).flatmap(
    lambda n: st.text(alphabet="0123456789abcdefABCDEFg", min_size=n, max_size=n)
)


@st.composite
def _literal(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return "'" + escape_string(draw(_STRING_BODY)) + "'"
    if choice == 1:
        return "'" + draw(_STRING_BODY) + "'"  # raw: may hold bad escapes or quotes
    if choice == 2:
        return "'" + draw(_HEXISH) + "'"
    return draw(st.sampled_from(["0", "13335", "013", "-1", "1.5", "true"]))


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    sco, path = draw(_TYPES_AND_PATHS)
    op = draw(
        st.sampled_from(["=", "!=", " LIKE ", " MATCHES ", " ISSUBSET ", " ISSUPERSET ", " IN "])
    )
    space = draw(st.sampled_from(["", " ", "  ", "\t"]))
    return f"{sco}:{path}{space}{op}{space}{draw(_literal())}"


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    observations = []
    for _ in range(draw(st.integers(1, 3))):
        comparisons = draw(st.lists(_comparison(), min_size=1, max_size=3))
        joiner = draw(st.sampled_from([" AND ", " OR ", "AND", " and "]))
        observations.append("[" + draw(st.sampled_from(["", " "])) + joiner.join(comparisons) + "]")
    return draw(st.sampled_from([" AND ", " OR ", " FOLLOWEDBY ", "AND"])).join(observations)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pattern())
def test_fast_path_never_accepts_what_the_reference_rejects(pattern: str) -> None:
    if _fast_valid(pattern):
        assert reference_errors(pattern) == [], pattern
    # And the public verdict is always the reference's.
    assert bool(PatternValidator().errors(pattern)) == bool(reference_errors(pattern))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(ObservableType)), st.text(max_size=40))
def test_exported_patterns_always_validate(kind: ObservableType, text: str) -> None:
    try:
        observable = normalise(kind, text)
    except InvalidObservable:
        return
    pattern = pattern_for(observable)
    if pattern is not None:
        assert reference_errors(pattern) == []
        assert observable_from_pattern(pattern) is not None

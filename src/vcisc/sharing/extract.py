"""Indicators found in free text (an analyst's notes, a pasted report), normalised.

Extraction is done by **ioc-finder** (PyPI ``ioc-finder``, LGPL-3.0, maintained: 9.4 in 2026):
pyparsing grammars for some thirty indicator types, defanged forms re-fanged by its sister
package ioc-fanger, and only three small pure-Python dependencies. The alternatives were
weighed: ``iocextract`` (GPL, last release 2023) and ``iocsearcher`` (MIT and maintained, but
it pulls in PDF/HTML/Office parsers, libmagic and cryptocurrency libraries that a text box does
not need). ioc-finder is used as a library (LGPL permits that from Apache-2.0 code).

Every candidate then goes through :func:`vcisc.sharing.observables.normalise`; the ones that
fail are returned with the reason rather than dropped silently, and duplicates (same
correlation key) are kept once. Results are grouped by type, in ioc-finder's order.

Deliberate choices passed to ioc-finder: no scheme-less URLs (``evil.example/x`` is a domain and
a path, not a URL of a known scheme), no domains re-extracted from URLs or e-mail addresses and
no addresses from CIDR ranges (the URL, address or network is the indicator, its parts are not
separate ones), and Unicode domains on (IDN → punycode in normalisation).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from ioc_finder import find_iocs

from vcisc.sharing.observables import InvalidObservable, Observable, ObservableType, normalise

__all__ = ["MAX_TEXT_LENGTH", "Extraction", "RejectedCandidate", "extract_observables"]

#: Longer texts are refused: ioc-finder's grammars are not linear-time on hostile input.
MAX_TEXT_LENGTH: Final = 1_000_000

#: ioc-finder's result keys and the VCISC types they become.
_IOC_FINDER_TYPES: Final[Mapping[str, ObservableType]] = {
    "urls": ObservableType.URL,
    "domains": ObservableType.DOMAIN,
    "ipv4s": ObservableType.IPV4,
    "ipv6s": ObservableType.IPV6,
    "ipv4_cidrs": ObservableType.CIDR,
    "ipv6_cidrs": ObservableType.CIDR,
    "email_addresses": ObservableType.EMAIL,
    "md5s": ObservableType.MD5,
    "sha1s": ObservableType.SHA1,
    "sha256s": ObservableType.SHA256,
    "sha512s": ObservableType.SHA512,
    "ssdeeps": ObservableType.SSDEEP,
    "asns": ObservableType.ASN,
    "registry_key_paths": ObservableType.REGISTRY_KEY,
}


@dataclass(frozen=True, slots=True)
class RejectedCandidate:
    """Something ioc-finder found that is not a valid indicator, and why."""

    type: ObservableType
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Extraction:
    observables: tuple[Observable, ...]
    rejected: tuple[RejectedCandidate, ...]


def extract_observables(
    text: str, *, types: Collection[ObservableType] | None = None
) -> Extraction:
    """The normalised indicators in ``text`` (optionally only of ``types``).

    CIDR ranges are normalised non-strictly (a report's ``10.1.2.3/8`` means the /8). Raises
    ``ValueError`` for text longer than :data:`MAX_TEXT_LENGTH`.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"text longer than {MAX_TEXT_LENGTH} characters; split it")
    wanted = set(types) if types is not None else set(_IOC_FINDER_TYPES.values())
    keys = [key for key, kind in _IOC_FINDER_TYPES.items() if kind in wanted]
    if not keys:
        return Extraction((), ())
    found = find_iocs(
        text,
        parse_domain_from_url=False,
        parse_from_url_path=False,
        parse_domain_from_email_address=False,
        parse_address_from_cidr=False,
        parse_domain_name_from_xmpp_address=False,
        parse_urls_without_scheme=False,
        parse_unicode_iocs=True,
        included_ioc_types=keys,
    )
    observables: list[Observable] = []
    seen: set[str] = set()
    rejected: list[RejectedCandidate] = []
    for key in keys:
        kind = _IOC_FINDER_TYPES[key]
        for candidate in found.get(key, ()):
            raw = str(candidate)
            try:
                observable = normalise(kind, raw, strict_cidr=False)
            except InvalidObservable as exc:
                rejected.append(RejectedCandidate(kind, raw, exc.reason))
                continue
            correlation = str(observable.correlation_key)
            if correlation not in seen:
                seen.add(correlation)
                observables.append(observable)
    return Extraction(tuple(observables), tuple(rejected))

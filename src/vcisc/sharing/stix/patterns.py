"""STIX patterns (STIX 2.1 §9): built from observables, read back, and validated fast.

Building: each :class:`~vcisc.sharing.observables.Observable` becomes one comparison
expression, ``[ipv4-addr:value = '198.51.100.7']``; a CIDR uses ``ISSUBSET`` (§9.5) so that the
indicator matches every address inside the network, not only the network object itself.

Validating: the reference validator (``stix2-patterns``, an ANTLR grammar, as run by
``stix2-validator``'s ``patterns`` check) costs about 0.25 ms a pattern, most of an import's
time. Nearly all real indicators have the simple form ``[type:path op 'literal' (AND|OR …)*]``,
so :class:`PatternValidator` recognises that form with regular expressions that accept a strict
subset of the grammar — standard object types and properties only, string or unsigned integer
literals, no qualifiers, no index steps — and answers "valid" without the grammar; anything
else, and any simple pattern whose hash value would fail the validator's hash check, goes to the
reference validator, whose verdicts are cached by pattern text. Tests check, over generated
patterns, that the fast path never accepts what the reference rejects.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from stix2patterns.v21.object_validator import HASHES_REGEX
from stix2validator import ValidationOptions
from stix2validator.v21 import enums as validator_enums
from stix2validator.v21 import musts as validator_musts

from vcisc.sharing.observables import InvalidObservable, Observable, ObservableType, normalise

__all__ = [
    "PatternCheck",
    "PatternStats",
    "PatternValidator",
    "dns_observable",
    "escape_string",
    "observable_from_pattern",
    "pattern_for",
]


def escape_string(value: str) -> str:
    """A §9.3 string literal body: backslash and single quote escaped (``\\\\``, ``\\'``)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _unescape(literal: str) -> str:
    return literal[1:-1].replace("\\'", "'").replace("\\\\", "\\")


def pattern_for(observable: Observable) -> str | None:
    """The STIX pattern matching ``observable``, or ``None`` if STIX 2.1 cannot say it (JA3)."""
    info = observable.info
    sco = observable.stix_object
    if sco is None or info.stix_path is None:
        return None
    if observable.type is ObservableType.ASN:
        return f"[{sco}:{info.stix_path} = {int(observable.value.removeprefix('AS'))}]"
    operator = "ISSUBSET" if observable.type is ObservableType.CIDR else "="
    return f"[{sco}:{info.stix_path} {operator} '{escape_string(observable.value)}']"


# --- the simple form ----------------------------------------------------------------------

_STRING: Final = r"'(?:[^'\\]|\\['\\])*'"
_IDENT: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_WS: Final = r"[ \t\r\n]"
_COMPONENT: Final = re.compile(rf"({_IDENT})|({_STRING})")
_COMPARISON: Final = re.compile(
    rf"{_WS}*(?P<type>[a-z][a-z0-9-]*):"
    rf"(?P<path>(?:{_IDENT}|{_STRING})(?:\.(?:{_IDENT}|{_STRING}))*)"
    rf"(?:{_WS}*(?P<sym>!=|=){_WS}*(?P<sval>{_STRING}|0|[1-9][0-9]*)"
    rf"|{_WS}+(?P<word>LIKE|MATCHES|ISSUBSET|ISSUPERSET){_WS}+(?P<wval>{_STRING}))"
)
_JOIN_COMPARISON: Final = re.compile(rf"{_WS}+(AND|OR){_WS}+")
_TRAILING_WS: Final = re.compile(rf"{_WS}*")
_JOIN_OBSERVATION: Final = re.compile(rf"{_WS}+(AND|OR|FOLLOWEDBY){_WS}+")
#: Grammar keywords (and the boolean literals) cannot be identifiers in a path.
_KEYWORDS: Final = frozenset(
    [
        "AND",
        "OR",
        "NOT",
        "FOLLOWEDBY",
        "LIKE",
        "MATCHES",
        "ISSUPERSET",
        "ISSUBSET",
        "EXISTS",
        "LAST",
        "IN",
        "START",
        "STOP",
        "SECONDS",
        "true",
        "false",
        "WITHIN",
        "REPEATS",
        "TIMES",
    ]
)
_OBSERVABLE_TYPES: Final = frozenset(validator_enums.OBSERVABLE_TYPES)
_OBSERVABLE_PROPERTIES: Final[Mapping[str, frozenset[str]]] = {
    k: frozenset(v) for k, v in validator_enums.OBSERVABLE_PROPERTIES.items()
}


@dataclass(frozen=True, slots=True)
class _Comparison:
    sco: str
    path: tuple[str, ...]
    operator: str
    literal: str  # as written, quotes included for strings


#: The commonest pattern of all, one comparison with a plain path: one regex decides it.
_SINGLE: Final = re.compile(
    rf"\[{_WS}*(?P<type>[a-z][a-z0-9-]*):(?P<head>{_IDENT})(?:\.(?P<tail>{_IDENT}|{_STRING}))?"
    rf"(?:{_WS}*(?P<sym>!=|=){_WS}*(?P<sval>{_STRING}|0|[1-9][0-9]*)"
    rf"|{_WS}+(?P<word>LIKE|MATCHES|ISSUBSET|ISSUPERSET){_WS}+(?P<wval>{_STRING})){_WS}*\]"
)


def _split_simple(pattern: str) -> list[list[_Comparison]] | None:
    """The comparisons of a simple-form pattern, per observation; ``None`` if not simple."""
    single = _SINGLE.fullmatch(pattern)
    if single is not None:
        head, tail = single.group("head"), single.group("tail")
        if head in _KEYWORDS or tail in _KEYWORDS:
            return None
        path = (head,) if tail is None else (head, _unescape(tail) if tail[0] == "'" else tail)
        return [
            [
                _Comparison(
                    single.group("type"),
                    path,
                    single.group("sym") or single.group("word"),
                    single.group("sval") or single.group("wval"),
                )
            ]
        ]
    return _split_general(pattern)


def _split_general(pattern: str) -> list[list[_Comparison]] | None:
    observations: list[list[_Comparison]] = []
    position = 0
    length = len(pattern)
    while True:
        if position >= length or pattern[position] != "[":
            return None
        position += 1
        comparisons: list[_Comparison] = []
        while True:
            match = _COMPARISON.match(pattern, position)
            if match is None:
                return None
            path: list[str] = []
            for component in _COMPONENT.finditer(match.group("path")):
                ident, literal = component.groups()
                if ident is not None:
                    if ident in _KEYWORDS:
                        return None
                    path.append(ident)
                else:
                    path.append(_unescape(literal))
            operator = match.group("sym") or match.group("word")
            literal = match.group("sval") or match.group("wval")
            comparisons.append(_Comparison(match.group("type"), tuple(path), operator, literal))
            position = match.end()
            join = _JOIN_COMPARISON.match(pattern, position)
            if join is None:
                break
            position = join.end()
        trailing = _TRAILING_WS.match(pattern, position)
        position = trailing.end() if trailing is not None else position
        if position >= length or pattern[position] != "]":
            return None
        position += 1
        observations.append(comparisons)
        if position == length:
            return observations
        join = _JOIN_OBSERVATION.match(pattern, position)
        if join is None:
            return None
        position = join.end()


def _hash_check_passes(comparison: _Comparison) -> bool:
    """Mirror of stix2-patterns' object_validator: known hash names must look like that hash."""
    if "hashes" not in comparison.path:
        return True
    selector = comparison.path[-1].upper().replace("-", "").replace("'", "")
    rule = HASHES_REGEX.get(selector)
    if rule is None:
        return True
    return re.match(rule[0], comparison.literal.replace("'", "")) is not None


def _fast_valid(pattern: str) -> bool:
    """True only if ``pattern`` is certainly valid; False means "ask the reference"."""
    observations = _split_simple(pattern)
    return observations is not None and _fast_valid_split(observations)


def _fast_valid_split(observations: list[list[_Comparison]]) -> bool:
    for comparisons in observations:
        for comparison in comparisons:
            properties = _OBSERVABLE_PROPERTIES.get(comparison.sco)
            if comparison.sco not in _OBSERVABLE_TYPES or properties is None:
                return False
            if comparison.path[0] not in properties:
                return False
            if not _hash_check_passes(comparison):
                return False
    return True


@dataclass(frozen=True, slots=True)
class PatternCheck:
    """A pattern's validation errors, and the one observable it names if it is that simple.

    ``value_problem`` is set when the pattern is valid STIX but its value is not a valid
    indicator (``[ipv4-addr:value = '999.1.1.1']``): importable, but not correlatable.
    """

    errors: tuple[str, ...]
    observable: Observable | None = None
    value_problem: str | None = None


@dataclass(slots=True)
class PatternStats:
    """How each pattern was decided: the fast path, the cache, or the reference validator."""

    fast: int = 0
    cached: int = 0
    reference: int = 0


class PatternValidator:
    """Validates STIX patterns like ``stix2-validator`` does, fast for the simple form.

    :meth:`errors` returns the validator's messages for an invalid pattern (empty if valid).
    One instance per import is typical; the cache holds up to ``cache_size`` verdicts.
    """

    def __init__(self, cache_size: int = 65536) -> None:
        self._options = ValidationOptions(version="2.1")
        self._cache: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
        self._cache_size = cache_size
        self.stats = PatternStats()

    def errors(self, pattern: str, version: str = "2.1") -> tuple[str, ...]:
        """stix2-validator's messages for ``pattern`` (STIX 2.1 §9); empty when valid."""
        observations = _split_simple(pattern) if version == "2.1" else None
        if observations is not None and _fast_valid_split(observations):
            self.stats.fast += 1
            return ()
        return self._errors_slow(pattern, version)

    def check(self, pattern: str, version: str = "2.1") -> PatternCheck:
        """:meth:`errors` plus the observable a valid single-comparison pattern names.

        Splits the pattern once for both (the import hot path needs both).
        """
        observations = _split_simple(pattern) if version == "2.1" else None
        if observations is not None and _fast_valid_split(observations):
            self.stats.fast += 1
        else:
            errors = self._errors_slow(pattern, version)
            if errors:
                return PatternCheck(errors)
        if observations is None:
            return PatternCheck(())
        try:
            return PatternCheck((), _observable_from_split(observations))
        except InvalidObservable as exc:
            return PatternCheck((), None, str(exc))

    def _errors_slow(self, pattern: str, version: str) -> tuple[str, ...]:
        key = (pattern, version)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cached += 1
            self._cache.move_to_end(key)
            return cached
        self.stats.reference += 1
        result = self._reference(pattern, version)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _reference(self, pattern: str, version: str) -> tuple[str, ...]:
        instance: dict[str, Any] = {
            "type": "indicator",
            "id": "indicator--00000000-0000-4000-8000-000000000000",
            "pattern_type": "stix",
            "pattern": pattern,
            "pattern_version": version,
        }
        try:
            return tuple(str(e) for e in validator_musts.patterns(instance, self._options))
        except Exception as exc:  # the validator crashes on some inputs ([file:hashes[0] = 1])
            return (f"the pattern validator failed on this pattern ({type(exc).__name__}: {exc})",)


# --- reading an observable back -----------------------------------------------------------

_HASH_TYPES: Final[Mapping[str, ObservableType]] = {
    "MD5": ObservableType.MD5,
    "SHA1": ObservableType.SHA1,
    "SHA256": ObservableType.SHA256,
    "SHA512": ObservableType.SHA512,
    "SSDEEP": ObservableType.SSDEEP,
}
_SIMPLE_PATHS: Final[Mapping[tuple[str, str], ObservableType]] = {
    ("url", "value"): ObservableType.URL,
    ("email-addr", "value"): ObservableType.EMAIL,
    ("file", "name"): ObservableType.FILENAME,
    ("mutex", "name"): ObservableType.MUTEX,
    ("windows-registry-key", "key"): ObservableType.REGISTRY_KEY,
}


def dns_observable(value: str) -> Observable:
    """A STIX ``domain-name`` value (§6.5): a domain if it has a dot, else a single-label host."""
    host = normalise(ObservableType.HOSTNAME, value, defanged=False)
    return Observable(ObservableType.DOMAIN, host.value) if "." in host.value else host


def observable_from_pattern(pattern: str) -> Observable | None:
    """The one observable a single-comparison pattern names, normalised; else ``None``.

    ``[domain-name:value = 'Evil.Example']`` → domain ``evil.example``;
    ``[ipv4-addr:value ISSUBSET '10.0.0.0/8']`` → cidr. Patterns with several comparisons,
    other operators or other paths say more than one value and return ``None``. Raises
    :class:`~vcisc.sharing.observables.InvalidObservable` when the pattern is simple but its
    value is not a valid indicator (``[ipv4-addr:value = '999.1.1.1']``).
    """
    observations = _split_simple(pattern)
    return _observable_from_split(observations) if observations is not None else None


def _observable_from_split(observations: list[list[_Comparison]]) -> Observable | None:
    if len(observations) != 1 or len(observations[0]) != 1:
        return None
    comparison = observations[0][0]
    path = comparison.path
    if comparison.sco == "autonomous-system" and path == ("number",):
        if comparison.operator == "=" and not comparison.literal.startswith("'"):
            return normalise(ObservableType.ASN, comparison.literal)
        return None
    if not comparison.literal.startswith("'"):
        return None
    value = _unescape(comparison.literal)
    if comparison.sco in ("ipv4-addr", "ipv6-addr") and path == ("value",):
        if comparison.operator == "ISSUBSET" or (comparison.operator == "=" and "/" in value):
            return normalise(ObservableType.CIDR, value, strict_cidr=False)
        if comparison.operator != "=":
            return None
        kind = ObservableType.IPV4 if comparison.sco == "ipv4-addr" else ObservableType.IPV6
        return normalise(kind, value, defanged=False)
    if comparison.operator != "=":
        return None
    if comparison.sco == "file" and len(path) == 2 and path[0] == "hashes":
        hash_type = _HASH_TYPES.get(path[1].upper().replace("-", ""))
        return normalise(hash_type, value) if hash_type is not None else None
    if comparison.sco == "domain-name" and path == ("value",):
        return dns_observable(value)
    simple = _SIMPLE_PATHS.get((comparison.sco, path[0])) if len(path) == 1 else None
    if simple is None:
        return None
    return normalise(simple, value, defanged=False)

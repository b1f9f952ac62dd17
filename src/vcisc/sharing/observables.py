"""Observable and indicator values: their types, canonical forms and correlation keys.

An engagement's indicators arrive from analysts, CSV files, free text, STIX bundles and MISP
events, each spelling the same thing differently (``Evil.EXAMPLE.com.``, ``evil[.]example.com``,
``xn--…``). :func:`normalise` turns each into one canonical :class:`Observable` so that storage,
exports and cross-engagement correlation (issue 5 part 5) compare like with like.

Rules, per type (each invalid value raises :class:`InvalidObservable` naming the value and why):

* **ipv4 / ipv6** — :mod:`ipaddress` canonical text (RFC 5952 for IPv6: lower case, longest zero
  run compressed). Octal-looking IPv4 (``010.1.1.1``) and IPv6 zone ids are refused: both are
  ambiguous as indicators.
* **cidr** — ``strict`` (default) refuses host bits (``198.51.100.7/24``) and says which network
  was probably meant; ``strict=False`` keeps the network address. :func:`cidr_contains` answers
  "is this address inside this network".
* **domain / hostname** — lower case, the root dot dropped, IDN labels to punycode A-labels with
  IDNA 2008 + UTS #46 (the ``idna`` package); underscores are allowed in ASCII labels because
  real names use them (``_dmarc``). A domain needs at least two labels.
* **url** — scheme and host lower-cased, IDN host to punycode, IP hosts canonical, default port
  dropped, an empty http(s) path becomes ``/``, percent-escapes normalised (RFC 3986 §6.2.2:
  hex digits upper-cased, escapes of unreserved characters decoded, characters that must be
  escaped are escaped as UTF-8), fragment dropped. The path and query are otherwise kept as
  written: no dot-segment removal, no re-ordering, no decoding of reserved characters, because
  ``/a/../b`` or ``%2F`` can be the very thing an indicator is about.
* **email** — the domain part as a domain; the local part is kept as written.
* **md5 / sha1 / sha256 / sha512 / ja3** — lower-case hex of the exact length;
  :func:`guess_hash_type` names the type from the length.
* **ssdeep** — ``blocksize:hash:hash`` kept as written (its base64 alphabet is case-sensitive).
* **asn** — ``AS13335``, ``ASN 13335``, ``13335`` and asdot ``0.13335`` all become ``AS13335``.
* **registry-key** — the hive expanded and upper-cased (STIX 2.1 §6.13 says the hive MUST be
  the full name), backslashes collapsed, the rest case-preserved; compared case-insensitively.
* **filename / mutex** — kept exactly (they are case-sensitive, and a trailing space can be the
  trick); only empty values, control characters and, for file names, path separators are
  refused.

Defanged input (``hxxp://``, ``[.]``, ``(dot)``, ``[@]`` …) is re-fanged first by :func:`refang`.

Pure code: no database, no network.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import idna

__all__ = [
    "TYPE_INFO",
    "CorrelationKey",
    "InvalidObservable",
    "Observable",
    "ObservableType",
    "TypeInfo",
    "address_range",
    "cidr_contains",
    "guess_hash_type",
    "guess_type",
    "normalise",
    "parse_observable",
    "refang",
]

#: No indicator value is longer than this many characters (URLs may be longer, see below).
MAX_VALUE_LENGTH: Final = 4096
#: URLs in the wild run long (tracking parameters, encoded payloads); beyond this is abuse.
MAX_URL_LENGTH: Final = 16384


class ObservableType(StrEnum):
    """The indicator types VCISC understands; the wire names used by the API, CLI and CSV."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    HOSTNAME = "hostname"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    SSDEEP = "ssdeep"
    FILENAME = "filename"
    JA3 = "ja3"
    ASN = "asn"
    MUTEX = "mutex"
    REGISTRY_KEY = "registry-key"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """How a type maps to the exchange formats and to correlation.

    ``stix_object``/``stix_path`` name the STIX 2.1 cyber-observable (§6) and the object path a
    pattern compares (§9); ``None`` where STIX 2.1 has no standard property (JA3).
    ``misp_type``/``misp_category`` follow PyMISP's describeTypes (MISP core format §2.3).
    ``family`` groups types that denote the same thing for correlation (a domain and a hostname
    are both DNS names; an IPv4 address and a /32 are one address).
    """

    family: str
    stix_object: str | None
    stix_path: str | None
    misp_type: str
    misp_category: str
    case_insensitive: bool


TYPE_INFO: Final[Mapping[ObservableType, TypeInfo]] = {
    ObservableType.IPV4: TypeInfo("ip", "ipv4-addr", "value", "ip-dst", "Network activity", True),
    ObservableType.IPV6: TypeInfo("ip", "ipv6-addr", "value", "ip-dst", "Network activity", True),
    # The STIX object of a CIDR depends on its address family; see Observable.stix_object.
    ObservableType.CIDR: TypeInfo("ip", "ipv4-addr", "value", "ip-dst", "Network activity", True),
    ObservableType.DOMAIN: TypeInfo(
        "dns", "domain-name", "value", "domain", "Network activity", True
    ),
    ObservableType.HOSTNAME: TypeInfo(
        "dns", "domain-name", "value", "hostname", "Network activity", True
    ),
    ObservableType.URL: TypeInfo("url", "url", "value", "url", "Network activity", False),
    ObservableType.EMAIL: TypeInfo(
        "email", "email-addr", "value", "email", "Payload delivery", True
    ),
    ObservableType.MD5: TypeInfo("md5", "file", "hashes.MD5", "md5", "Payload delivery", True),
    ObservableType.SHA1: TypeInfo(
        "sha1", "file", "hashes.'SHA-1'", "sha1", "Payload delivery", True
    ),
    ObservableType.SHA256: TypeInfo(
        "sha256", "file", "hashes.'SHA-256'", "sha256", "Payload delivery", True
    ),
    ObservableType.SHA512: TypeInfo(
        "sha512", "file", "hashes.'SHA-512'", "sha512", "Payload delivery", True
    ),
    ObservableType.SSDEEP: TypeInfo(
        "ssdeep", "file", "hashes.SSDEEP", "ssdeep", "Payload delivery", False
    ),
    ObservableType.FILENAME: TypeInfo(
        "filename", "file", "name", "filename", "Payload delivery", False
    ),
    ObservableType.JA3: TypeInfo(
        "ja3", None, None, "ja3-fingerprint-md5", "Network activity", True
    ),
    ObservableType.ASN: TypeInfo(
        "asn", "autonomous-system", "number", "AS", "Network activity", True
    ),
    ObservableType.MUTEX: TypeInfo("mutex", "mutex", "name", "mutex", "Artifacts dropped", False),
    ObservableType.REGISTRY_KEY: TypeInfo(
        "regkey", "windows-registry-key", "key", "regkey", "Persistence mechanism", True
    ),
}


class InvalidObservable(ValueError):
    """A value that is not a valid indicator of its type; ``reason`` says why."""

    def __init__(self, value: str, reason: str, type_: ObservableType | None = None) -> None:
        self.value = value
        self.reason = reason
        self.type = type_
        what = f"{type_.value} value" if type_ is not None else "value"
        shown = value if len(value) <= 200 else value[:200] + "…"
        super().__init__(f"invalid {what} {shown!r}: {reason}")


@dataclass(frozen=True, slots=True, order=True)
class CorrelationKey:
    """Type family plus canonical comparison value: equal keys mean "the same indicator".

    ``str(key)`` (``dns:evil.example``) is what correlation storage indexes.
    """

    family: str
    value: str

    def __str__(self) -> str:
        return f"{self.family}:{self.value}"


@dataclass(frozen=True, slots=True)
class Observable:
    """A normalised indicator value. Build it with :func:`normalise`, never by hand."""

    type: ObservableType
    value: str

    @property
    def info(self) -> TypeInfo:
        return TYPE_INFO[self.type]

    @property
    def stix_object(self) -> str | None:
        """The STIX 2.1 cyber-observable type this value is a property of (§6)."""
        if self.type is ObservableType.CIDR and ":" in self.value:
            return "ipv6-addr"
        return self.info.stix_object

    @property
    def correlation_key(self) -> CorrelationKey:
        """The key correlation indexes; see the module docstring for what counts as equal."""
        family = self.info.family
        value = self.value
        if family == "ip":
            value = _ip_correlation_value(self)
        elif self.type is ObservableType.EMAIL or self.type is ObservableType.REGISTRY_KEY:
            # Mailbox local parts are case-sensitive in theory (RFC 5321 §2.4) and never in
            # practice; registry keys are case-insensitive (STIX 2.1 §6.13 keeps the case only
            # for display). Correlation compares them folded.
            value = value.casefold()
        elif self.type is ObservableType.ASN:
            value = value.removeprefix("AS")
        return CorrelationKey(family, value)


def _ip_correlation_value(observable: Observable) -> str:
    if observable.type is ObservableType.CIDR:
        network = ipaddress.ip_network(observable.value)
        if network.num_addresses == 1:  # a /32 or /128 is the address itself
            return _ip_correlation_value(
                Observable(
                    ObservableType.IPV4 if network.version == 4 else ObservableType.IPV6,
                    str(network.network_address),
                )
            )
        return observable.value
    if observable.type is ObservableType.IPV6:
        mapped = ipaddress.IPv6Address(observable.value).ipv4_mapped
        if mapped is not None:  # ::ffff:198.51.100.7 is 198.51.100.7 on the wire
            return str(mapped)
    return observable.value


def address_range(observable: Observable) -> tuple[str, str] | None:
    """The first and last address an IP or CIDR observable covers, as sortable text (``4`` or
    ``6`` then the address in fixed-width hex), or None for other types. Within a family the
    text orders as the numbers do, so containment is a range comparison a B-tree index answers
    (an IPv4-mapped IPv6 address counts as the IPv4 address, as in its correlation key)."""
    if observable.info.family != "ip":
        return None
    value = _ip_correlation_value(observable)
    network = ipaddress.ip_network(value, strict=False)
    width = 8 if network.version == 4 else 32
    first, last = int(network.network_address), int(network.broadcast_address)
    return (f"{network.version}{first:0{width}x}", f"{network.version}{last:0{width}x}")


# --- re-fanging ---------------------------------------------------------------------------

_REFANG_RULES: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = (
    (
        re.compile(r"^\s*h(?:xx|\*\*|XX|xX|Xx|tt)p(s?)(?=\s*(?:\[:\]|:|\[://\]))", re.I),
        lambda m: "http" + m.group(1).lower(),
    ),
    (re.compile(r"^\s*f(?:x|xx)p(?=\s*(?:\[:\]|:|\[://\]))", re.I), "ftp"),
    (re.compile(r"\[://\]"), "://"),
    (re.compile(r"\[:\]"), ":"),
    (re.compile(r"\[/\]"), "/"),
    (re.compile(r"\s*(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}|\\\.)\s*", re.I), "."),
    (re.compile(r"\s*(?:\[@\]|\(@\)|\{@\}|\[at\]|\(at\)|\{at\})\s*", re.I), "@"),
)


def refang(value: str) -> str:
    """Undo the usual defanging (``hxxps[:]//evil[.]example``, ``a[@]b[.]c``, ``1.2.3[.]4``).

    Only bracketed or otherwise unambiguous markers are rewritten, so a value that was never
    defanged comes back unchanged.
    """
    if not _MAY_BE_DEFANGED.search(value):
        return value
    for pattern, replacement in _REFANG_RULES:
        value = pattern.sub(replacement, value)
    return value


#: Every rule needs one of these characters (or a scheme starting h/f), so most values skip them.
_MAY_BE_DEFANGED: Final = re.compile(r"[\[\](){}\\]|^\s*[hHfF]")


# --- per-type normalisers -----------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEX = frozenset(string.hexdigits)
_HASH_LENGTHS: Final[Mapping[int, ObservableType]] = {
    32: ObservableType.MD5,
    40: ObservableType.SHA1,
    64: ObservableType.SHA256,
    128: ObservableType.SHA512,
}
_HEX_LENGTH: Final[Mapping[ObservableType, int]] = {
    ObservableType.MD5: 32,
    ObservableType.SHA1: 40,
    ObservableType.SHA256: 64,
    ObservableType.SHA512: 128,
    ObservableType.JA3: 32,
}


def _fail(value: str, type_: ObservableType, reason: str) -> InvalidObservable:
    return InvalidObservable(value, reason, type_)


def _ipv4(raw: str, type_: ObservableType = ObservableType.IPV4) -> str:
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError as exc:
        raise _fail(raw, type_, f"not an IPv4 address ({exc})") from None


def _ipv6(raw: str, type_: ObservableType = ObservableType.IPV6) -> str:
    text = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise _fail(raw, type_, f"not an IPv6 address ({exc})") from None
    if address.scope_id is not None:
        raise _fail(raw, type_, "IPv6 zone ids (%…) are local to one host; drop the zone")
    return address.compressed


def _cidr(raw: str, strict: bool) -> str:
    type_ = ObservableType.CIDR
    if "/" not in raw:
        raise _fail(raw, type_, "a CIDR network needs a prefix length, e.g. 198.51.100.0/24")
    address, _, prefix = raw.partition("/")
    if not prefix.isdigit() or (len(prefix) > 1 and prefix.startswith("0")):
        raise _fail(raw, type_, f"prefix length {prefix!r} is not a plain decimal number")
    canonical_address = _ipv6(address, type_) if ":" in address else _ipv4(address, type_)
    text = f"{canonical_address}/{int(prefix)}"
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        if "has host bits set" not in str(exc):
            raise _fail(raw, type_, str(exc)) from None
        network = ipaddress.ip_network(text, strict=False)
        if strict:
            raise _fail(
                raw, type_, f"host bits are set; the network is {network} (or pass strict=False)"
            ) from None
        return str(network)


_ASCII_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _dns_name(raw: str, type_: ObservableType) -> str:
    text = raw.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]  # the root label: evil.example. is evil.example
    if not text:
        raise _fail(raw, type_, "empty name")
    if text.isascii():
        text = text.lower()
        labels = text.split(".")
        for label in labels:
            if not label:
                raise _fail(raw, type_, "empty label (two dots in a row, or a leading dot)")
            if len(label) > 63:
                raise _fail(raw, type_, f"label {label[:20]!r}… is longer than 63 characters")
            if not _ASCII_LABEL.match(label):
                raise _fail(
                    raw,
                    type_,
                    f"label {label!r} may hold only letters, digits, hyphens and underscores, "
                    "and may not start or end with a hyphen",
                )
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except idna.IDNAError as exc:
                    raise _fail(
                        raw, type_, f"label {label!r} is not a valid A-label: {exc}"
                    ) from None
    else:
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise _fail(raw, type_, f"not a valid internationalised name: {exc}") from None
        labels = text.split(".")
    if len(text) > 253:
        raise _fail(raw, type_, "longer than 253 characters")
    if labels[-1].isdigit():
        raise _fail(raw, type_, "the last label is numeric: is this an IP address?")
    if type_ is ObservableType.DOMAIN and len(labels) < 2:
        raise _fail(raw, type_, "a domain needs at least two labels (e.g. example.org)")
    return text


_LOCAL_PART = re.compile(r"^[^\s@\"(),:;<>\[\]\\]{1,64}$")


def _email(raw: str) -> str:
    type_ = ObservableType.EMAIL
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain:
        raise _fail(raw, type_, "an e-mail address needs local-part@domain")
    if not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith("."):
        raise _fail(raw, type_, f"local part {local!r} is not a plain mailbox name")
    if domain.startswith("["):
        raise _fail(raw, type_, "address literals ([…]) are not supported; use the IP type")
    try:
        canonical_domain = _dns_name(domain, ObservableType.DOMAIN)
    except InvalidObservable as exc:
        raise _fail(raw, type_, f"domain part: {exc.reason}") from None
    return f"{local}@{canonical_domain}"


def _hex_hash(raw: str, type_: ObservableType) -> str:
    text = raw.lower()
    if not text or not _HEX.issuperset(text):
        raise _fail(raw, type_, "a hash is hexadecimal digits only")
    expected = _HEX_LENGTH[type_]
    if len(text) != expected:
        hint = _HASH_LENGTHS.get(len(text))
        also = f" (the length of a {hint.value})" if hint and hint is not type_ else ""
        raise _fail(raw, type_, f"expected {expected} hex digits, got {len(text)}{also}")
    return text


_SSDEEP = re.compile(r"^(\d{1,10}):([A-Za-z0-9+/]{1,64}):([A-Za-z0-9+/]{1,64})(,\"?[^\"]*\"?)?$")


def _ssdeep(raw: str) -> str:
    type_ = ObservableType.SSDEEP
    match = _SSDEEP.match(raw)
    if not match:
        raise _fail(raw, type_, "expected blocksize:hash:hash (base64 alphabet)")
    block_size = int(match.group(1))
    # Block sizes are 3·2ⁿ (ssdeep's spamsum). The trailing ,"filename" part is not the hash.
    if block_size < 3 or block_size % 3 or (block_size // 3) & (block_size // 3 - 1):
        raise _fail(raw, type_, f"block size {block_size} is not 3·2ⁿ")
    return f"{block_size}:{match.group(2)}:{match.group(3)}"


_ASN = re.compile(r"^(?:AS|ASN)?\s*(?:(\d{1,5})\.(\d{1,5})|(\d{1,10}))$", re.I)


def _asn(raw: str) -> str:
    type_ = ObservableType.ASN
    match = _ASN.match(raw)
    if not match:
        raise _fail(raw, type_, "expected AS<number>, e.g. AS13335")
    if match.group(3) is not None:
        number = int(match.group(3))
    else:  # asdot notation, RFC 5396: high.low
        high, low = int(match.group(1)), int(match.group(2))
        if high > 0xFFFF or low > 0xFFFF:
            raise _fail(raw, type_, "asdot halves must each be at most 65535")
        number = high * 65536 + low
    if number > 0xFFFFFFFF:
        raise _fail(raw, type_, "AS numbers are 32-bit (at most 4294967295)")
    return f"AS{number}"


_HIVES: Final[Mapping[str, str]] = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKEY_CURRENT_USER": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKEY_CLASSES_ROOT": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKEY_USERS": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
    "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG",
    "HKPD": "HKEY_PERFORMANCE_DATA",
    "HKEY_PERFORMANCE_DATA": "HKEY_PERFORMANCE_DATA",
}


def _registry_key(raw: str) -> str:
    type_ = ObservableType.REGISTRY_KEY
    # Key names cannot contain a backslash or be empty, so a doubled separator (JSON or shell
    # escaping that leaked into the value) never means anything else.
    parts = [part for part in raw.replace("/", "\\").split("\\") if part]
    if not parts:
        raise _fail(raw, type_, "empty registry key")
    hive = _HIVES.get(parts[0].upper())
    if hive is None:
        raise _fail(
            raw, type_, f"must start with a hive such as HKEY_LOCAL_MACHINE, not {parts[0]!r}"
        )
    if any(len(part) > 255 for part in parts[1:]):
        raise _fail(raw, type_, "a key name is longer than 255 characters")
    return "\\".join([hive, *parts[1:]])


def _filename(raw: str) -> str:
    type_ = ObservableType.FILENAME
    if not raw.strip():
        raise _fail(raw, type_, "empty file name")
    if "/" in raw or "\\" in raw:
        raise _fail(raw, type_, "a file name has no directory part; this looks like a path")
    if len(raw) > 255:
        raise _fail(raw, type_, "longer than 255 characters")
    return raw


def _mutex(raw: str) -> str:
    if not raw.strip():
        raise _fail(raw, ObservableType.MUTEX, "empty mutex name")
    return raw


# --- URLs ---------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DEFAULT_PORTS: Final[Mapping[str, int]] = {
    "http": 80,
    "https": 443,
    "ftp": 21,
    "ws": 80,
    "wss": 443,
    "gopher": 70,
}
# RFC 3986 §2.3 unreserved characters, §2.2 reserved (kept as written, never decoded).
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_RESERVED = frozenset(":/?#[]@!$&'()*+,;=")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _normalise_component(raw: str, component: str) -> str:
    """Percent-normalise one URL component (RFC 3986 §6.2.2.1–§6.2.2.2)."""
    bad = _PCT.search(component)
    if bad:
        raise _fail(
            raw,
            ObservableType.URL,
            f"'%' at offset {bad.start()} of {component[:40]!r} does not start an escape (%XX)",
        )
    out: list[str] = []
    i = 0
    while i < len(component):
        char = component[i]
        if char == "%":
            byte = int(component[i + 1 : i + 3], 16)
            decoded = chr(byte)
            out.append(decoded if decoded in _UNRESERVED else f"%{byte:02X}")
            i += 3
            continue
        if char in _UNRESERVED or char in _RESERVED:
            out.append(char)
        else:  # space, non-ASCII, "<>\"^`{|}\\": escaped as UTF-8 the way browsers send them
            out.extend(f"%{b:02X}" for b in char.encode("utf-8"))
        i += 1
    return "".join(out)


def _url(raw: str) -> str:
    type_ = ObservableType.URL
    if len(raw) > MAX_URL_LENGTH:
        raise _fail(raw, type_, f"longer than {MAX_URL_LENGTH} characters")
    scheme_match = _SCHEME.match(raw)
    if not scheme_match:
        raise _fail(raw, type_, "a URL needs a scheme (http://, https://, ftp:// …)")
    scheme = scheme_match.group(1).lower()
    rest = raw[scheme_match.end() :]
    if not rest.startswith("//"):
        raise _fail(raw, type_, "only URLs with an authority (scheme://host/…) are indicators")
    rest = rest[2:]
    rest = rest.split("#", 1)[0]  # the fragment never leaves the client
    authority_end = len(rest)
    for separator in "/?":
        position = rest.find(separator)
        if position != -1:
            authority_end = min(authority_end, position)
    authority, path_and_query = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        userinfo, hostport = "", authority
    host, port = _split_host_port(raw, hostport)
    if not host:
        if scheme != "file":
            raise _fail(raw, type_, "no host")
        canonical_host = ""
    elif host.startswith("["):
        canonical_host = f"[{_ipv6(host, type_)}]"
    elif _looks_like_ipv4(host):
        canonical_host = _ipv4(host, type_)
    else:
        try:
            canonical_host = _dns_name(host, ObservableType.HOSTNAME)
        except InvalidObservable as exc:
            raise _fail(raw, type_, f"host {host!r}: {exc.reason}") from None
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        port = None
    path, question, query = path_and_query.partition("?")
    path = _normalise_component(raw, path)
    if not path and scheme in ("http", "https"):
        path = "/"  # RFC 3986 §6.2.3: an empty http path is "/"
    result = f"{scheme}://"
    if userinfo:
        result += _normalise_component(raw, userinfo) + "@"
    result += canonical_host
    if port is not None:
        result += f":{port}"
    result += path
    if question:
        result += "?" + _normalise_component(raw, query)
    return result


def _split_host_port(raw: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            raise _fail(raw, ObservableType.URL, "unclosed [ in an IPv6 host")
        host, tail = hostport[: end + 1], hostport[end + 1 :]
        if tail and not tail.startswith(":"):
            raise _fail(raw, ObservableType.URL, f"unexpected {tail!r} after the IPv6 host")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = hostport.partition(":")
    if not port_text:
        return host, None
    if not port_text.isdigit() or int(port_text) > 65535:
        raise _fail(raw, ObservableType.URL, f"port {port_text!r} is not a number in 0–65535")
    return host, int(port_text)


_IPV4ISH = re.compile(r"^[0-9.]+$")


def _looks_like_ipv4(host: str) -> bool:
    return bool(_IPV4ISH.match(host))


# --- the public entry points --------------------------------------------------------------


def normalise(
    type_: ObservableType | str, value: str, *, strict_cidr: bool = True, defanged: bool = True
) -> Observable:
    """The canonical :class:`Observable` for ``value`` read as ``type_``.

    ``defanged`` (default on) re-fangs first. Raises :class:`InvalidObservable` with the reason.
    """
    try:
        kind = type_ if type_.__class__ is ObservableType else ObservableType(type_)
    except ValueError:
        known = ", ".join(t.value for t in ObservableType)
        raise InvalidObservable(value, f"unknown type {type_!r}; expected one of {known}") from None
    if not isinstance(value, str):
        raise InvalidObservable(repr(value), "the value must be text", kind)
    text = value
    if kind not in _EXACT_TYPES:
        text = text.strip()
    if defanged and kind in _REFANG_TYPES:
        text = refang(text)
    if not text:
        raise _fail(value, kind, "empty value")
    limit = MAX_URL_LENGTH if kind is ObservableType.URL else MAX_VALUE_LENGTH
    if len(text) > limit:
        raise _fail(value, kind, f"longer than {limit} characters")
    if _CONTROL.search(text):
        raise _fail(value, kind, "contains control characters")
    try:
        canonical = _NORMALISERS[kind](text, strict_cidr)
    except InvalidObservable as exc:
        # Report the value as the caller gave it, not the re-fanged intermediate.
        raise InvalidObservable(value, exc.reason, kind) from None
    return Observable(kind, canonical)


#: Kept exactly as given: no stripping (a trailing space in a file name can be the trick).
_EXACT_TYPES: Final = frozenset({ObservableType.FILENAME, ObservableType.MUTEX})
#: Network indicators are the ones people defang; a registry key's "\\." is a real key name.
_REFANG_TYPES: Final = frozenset(
    {
        ObservableType.IPV4,
        ObservableType.IPV6,
        ObservableType.CIDR,
        ObservableType.DOMAIN,
        ObservableType.HOSTNAME,
        ObservableType.URL,
        ObservableType.EMAIL,
    }
)

_NORMALISERS: Final[Mapping[ObservableType, Callable[[str, bool], str]]] = {
    ObservableType.IPV4: lambda v, s: _ipv4(v),
    ObservableType.IPV6: lambda v, s: _ipv6(v),
    ObservableType.CIDR: lambda v, s: _cidr(v, s),
    ObservableType.DOMAIN: lambda v, s: _dns_name(v, ObservableType.DOMAIN),
    ObservableType.HOSTNAME: lambda v, s: _dns_name(v, ObservableType.HOSTNAME),
    ObservableType.URL: lambda v, s: _url(v),
    ObservableType.EMAIL: lambda v, s: _email(v),
    ObservableType.MD5: lambda v, s: _hex_hash(v, ObservableType.MD5),
    ObservableType.SHA1: lambda v, s: _hex_hash(v, ObservableType.SHA1),
    ObservableType.SHA256: lambda v, s: _hex_hash(v, ObservableType.SHA256),
    ObservableType.SHA512: lambda v, s: _hex_hash(v, ObservableType.SHA512),
    ObservableType.JA3: lambda v, s: _hex_hash(v, ObservableType.JA3),
    ObservableType.SSDEEP: lambda v, s: _ssdeep(v),
    ObservableType.FILENAME: lambda v, s: _filename(v),
    ObservableType.ASN: lambda v, s: _asn(v),
    ObservableType.MUTEX: lambda v, s: _mutex(v),
    ObservableType.REGISTRY_KEY: lambda v, s: _registry_key(v),
}


def guess_hash_type(value: str) -> ObservableType:
    """md5/sha1/sha256/sha512 from the length of a hex string (32/40/64/128 digits).

    The length is all there is to go on: a 64-digit value could be SHA3-256, a 32-digit one a
    JA3 fingerprint. Callers who know better pass the type to :func:`normalise`.
    """
    text = value.strip()
    if not text or not _HEX.issuperset(text):
        raise InvalidObservable(value, "a hash is hexadecimal digits only")
    kind = _HASH_LENGTHS.get(len(text))
    if kind is None:
        raise InvalidObservable(
            value, f"{len(text)} hex digits is no known hash length (32, 40, 64 or 128)"
        )
    return kind


_GUESS_ASN = re.compile(r"^AS[N]?\s*\d", re.I)


def guess_type(value: str) -> ObservableType:
    """The most likely type of a bare value (CSV without a type column, a search box).

    URL if it has a scheme, e-mail if it has an @, IP, CIDR, hash by length, ASN, registry key
    by its hive, else a domain. Raises :class:`InvalidObservable` when nothing fits.
    """
    text = refang(value.strip())
    if not text:
        raise InvalidObservable(value, "empty value")
    if _SCHEME.match(text) and "://" in text:
        return ObservableType.URL
    if "@" in text:
        return ObservableType.EMAIL
    if "/" in text:
        head = text.partition("/")[0]
        if _looks_like_ipv4(head) or ":" in head:
            return ObservableType.CIDR
    if text.count(":") >= 2 and _HEX.union(":.[]").issuperset(text):
        return ObservableType.IPV6
    if _looks_like_ipv4(text):
        return ObservableType.IPV4
    if _HEX.issuperset(text) and len(text) in _HASH_LENGTHS:
        return _HASH_LENGTHS[len(text)]
    if _SSDEEP.match(text):
        return ObservableType.SSDEEP
    if _GUESS_ASN.match(text):
        return ObservableType.ASN
    if text.upper().split("\\", 1)[0] in _HIVES and "\\" in text:
        return ObservableType.REGISTRY_KEY
    if "." in text.strip("."):
        return ObservableType.DOMAIN
    raise InvalidObservable(value, "cannot tell what kind of indicator this is; give its type")


def parse_observable(value: str, type_: ObservableType | str | None = None) -> Observable:
    """:func:`normalise` with the type guessed by :func:`guess_type` when not given."""
    return normalise(type_ if type_ is not None else guess_type(value), value)


def cidr_contains(network: Observable | str, address: Observable | str) -> bool:
    """Whether ``address`` (an IP, or a smaller network) lies inside ``network``.

    Plain strings are normalised first (non-strict for the network, so ``10.1.2.3/8`` means
    ``10.0.0.0/8``). A bare IP as ``network`` is its own /32 or /128. Different address
    families never contain each other; an IPv4-mapped IPv6 address counts as its IPv4 address.
    """
    outer = _as_network(network)
    if isinstance(address, Observable):
        addr_obs = address
    elif "/" in address:
        addr_obs = normalise(ObservableType.CIDR, address, strict_cidr=False)
    else:
        addr_obs = parse_observable(address)
    if addr_obs.type is ObservableType.CIDR:
        inner = ipaddress.ip_network(addr_obs.value)
        if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
            return inner.subnet_of(outer)
        if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
            return inner.subnet_of(outer)
        return False
    if addr_obs.type not in (ObservableType.IPV4, ObservableType.IPV6):
        raise InvalidObservable(addr_obs.value, "only IP addresses and networks lie in a network")
    ip = ipaddress.ip_address(addr_obs.value)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version == outer.version and ip in outer


def _as_network(network: Observable | str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(network, str):
        if "/" in network:
            network = normalise(ObservableType.CIDR, network, strict_cidr=False)
        else:
            network = parse_observable(network)
    if network.type is ObservableType.CIDR:
        return ipaddress.ip_network(network.value)
    if network.type in (ObservableType.IPV4, ObservableType.IPV6):
        return ipaddress.ip_network(network.value)  # a host address is a /32 or /128
    raise InvalidObservable(network.value, "not an IP network", network.type)

"""Reading STIX 2.1 bundles (§8) into checked objects, streamed, with a report of each fault.

:func:`read_bundle` streams a bundle of any size with ijson's C backend (``yajl2_c``): objects
are built one at a time from ``objects.item`` and checked without ``stix2.parse`` —
:func:`vcisc.sharing.stix.objects.check_object` for the STIX MUSTs, the TLP markings of
DOMAIN.md §5 (2.0 and 1.0 ids; an unknown marking id is an error), the indicator pattern with
:class:`~vcisc.sharing.stix.patterns.PatternValidator`, and duplicates: the same ``id`` and
``modified`` twice with different content is a conflict (the first copy stands, later ones are
errors); an identical copy is dropped with a warning. Memory stays flat: per object only a
32-byte fingerprint is kept.

Bad input as issue 5 lists it: invalid JSON, not a bundle, more objects or bytes than the limit
→ :class:`BundleError` (fatal, whatever the mode); an object that breaks the spec, an unknown
marking id, a pattern that does not parse, a conflicting duplicate → an
:class:`~vcisc.sharing.reports.ObjectProblem` with the reason (and stix2-validator's own
wording in ``details``). In :attr:`~vcisc.sharing.reports.ImportMode.ATOMIC` mode any error
means the caller stores nothing; in ``SKIP_INVALID`` only the valid objects are yielded.

Objects that refer to a marking definition the bundle has not defined yet are held back until
it appears (bundles may list markings last), up to ``max_pending`` of them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final

import ijson
from stix2validator import ValidationOptions, validate_instance

from vcisc.sharing.observables import InvalidObservable, Observable, ObservableType, normalise
from vcisc.sharing.reports import ImportMode, ImportReport, ObjectProblem
from vcisc.sharing.stix.markings import MarkingError, tlp_for_marking_id, tlp_of_marking_definition
from vcisc.sharing.stix.objects import check_object, is_sco
from vcisc.sharing.stix.patterns import PatternStats, PatternValidator, dns_observable
from vcisc.tlp import Tlp, strictest

__all__ = [
    "BundleError",
    "BundleImport",
    "BundleReader",
    "ImportOptions",
    "ImportedObject",
    "import_bundle",
    "read_bundle",
]

_BUNDLE_ID_PREFIX: Final = "bundle--"
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import. ``default_tlp`` marks objects that carry no TLP marking (the caller's
    choice, usually the engagement's TLP: nothing is ever stored unmarked)."""

    default_tlp: Tlp
    mode: ImportMode = ImportMode.ATOMIC
    max_objects: int = 1_000_000
    max_bytes: int = 1 << 30
    #: Run stix2-validator on every object too (slow: for small, untrusted uploads).
    thorough: bool = False
    #: Add stix2-validator's own messages to the report entries of the first this-many invalid
    #: objects (it costs milliseconds an object; a hostile bundle could be all invalid).
    validator_details: int = 100
    #: Objects held back waiting for a marking definition defined later in the bundle.
    max_pending: int = 10_000


@dataclass(frozen=True, slots=True)
class ImportedObject:
    """A valid STIX object, with the TLP that governs it and the indicators it names.

    ``tlp_marked`` is False when the object had no TLP marking and got ``default_tlp``.
    ``observables`` holds the normalised values of a simple indicator pattern or of an SCO,
    for correlation; empty when the object names none VCISC understands.
    """

    index: int
    id: str
    type: str
    modified: str | None
    tlp: Tlp
    tlp_marked: bool
    observables: tuple[Observable, ...]
    stix: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class BundleImport:
    """All valid objects of a bundle (none if the report says it was rejected)."""

    objects: tuple[ImportedObject, ...]
    report: ImportReport


class BundleError(Exception):
    """The bundle as a whole is unusable: nothing from it may be stored."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _TooLarge(Exception):
    pass


class _LimitedReader:
    """Counts bytes; can replay what an envelope scan read before handing the stream on."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self._source = source
        self._limit = limit
        self.count = 0
        self._replay = b""
        self.recording: bytearray | None = None

    def read(self, size: int = -1) -> bytes:
        if self._replay:
            data, self._replay = (
                (self._replay, b"") if size < 0 else (self._replay[:size], self._replay[size:])
            )
            return data
        data = self._source.read(size if size >= 0 else _CHUNK)
        self.count += len(data)
        if self.count > self._limit:
            raise _TooLarge
        if self.recording is not None:
            self.recording += data
        return data

    def rewind(self) -> None:
        """Replay everything recorded since recording started."""
        if self.recording is not None:
            self._replay = bytes(self.recording) + self._replay
            self.recording = None


#: An object waiting for a marking definition: index, object, ids still undefined, observables.
_Pending = tuple[int, dict[str, Any], set[str], tuple[Observable, ...]]


def _fingerprint(obj: Mapping[str, Any]) -> int:
    # Only ever compared with another copy's fingerprint in this process, so Python's own
    # 64-bit string hash will do; the canonical (sorted-key) JSON makes key order irrelevant.
    return hash(json.dumps(obj, sort_keys=True, separators=(",", ":")))


def _version_key(oid: str, modified: object) -> bytes:
    key = f"{oid}|{modified if isinstance(modified, str) else ''}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


_SCO_VALUE_TYPES: Final[Mapping[str, ObservableType]] = {
    "url": ObservableType.URL,
    "email-addr": ObservableType.EMAIL,
}
_SCO_HASHES: Final[Mapping[str, ObservableType]] = {
    "MD5": ObservableType.MD5,
    "SHA1": ObservableType.SHA1,
    "SHA256": ObservableType.SHA256,
    "SHA512": ObservableType.SHA512,
    "SSDEEP": ObservableType.SSDEEP,
}


def _sco_observables(obj: Mapping[str, Any]) -> tuple[Observable, ...]:
    """The indicator values an SCO carries (§6), normalised; raises InvalidObservable."""
    kind = obj["type"]
    value = obj.get("value")
    if kind in ("ipv4-addr", "ipv6-addr") and isinstance(value, str):
        if "/" in value:
            return (normalise(ObservableType.CIDR, value, strict_cidr=False),)
        return (
            normalise(ObservableType.IPV4 if kind == "ipv4-addr" else ObservableType.IPV6, value),
        )
    if kind == "domain-name" and isinstance(value, str):
        return (dns_observable(value),)
    if kind in _SCO_VALUE_TYPES and isinstance(value, str):
        return (normalise(_SCO_VALUE_TYPES[kind], value, defanged=False),)
    if kind == "autonomous-system" and isinstance(obj.get("number"), int):
        return (normalise(ObservableType.ASN, str(obj["number"])),)
    if kind == "mutex" and isinstance(obj.get("name"), str):
        return (normalise(ObservableType.MUTEX, obj["name"]),)
    if kind == "windows-registry-key" and isinstance(obj.get("key"), str):
        return (normalise(ObservableType.REGISTRY_KEY, obj["key"]),)
    if kind == "file":
        found: list[Observable] = []
        hashes = obj.get("hashes")
        if isinstance(hashes, Mapping):
            for name, digest in hashes.items():
                hash_type = _SCO_HASHES.get(name.upper().replace("-", ""))
                if hash_type is not None and isinstance(digest, str):
                    found.append(normalise(hash_type, digest))
        if isinstance(obj.get("name"), str):
            found.append(normalise(ObservableType.FILENAME, obj["name"]))
        return tuple(found)
    return ()


class BundleReader:
    """Iterate to stream a bundle's valid objects; :attr:`report` says what happened.

    Iteration raises :class:`BundleError` on a fatal fault; the caller then stores nothing.
    In atomic mode the caller must also store nothing when ``report.rejected`` is true after
    the last object (an error can come from the last object of the bundle).
    """

    def __init__(self, source: bytes | str | IO[bytes], options: ImportOptions) -> None:
        if isinstance(source, str):
            source = source.encode("utf-8", "surrogatepass")
        if isinstance(source, bytes | bytearray):
            if len(source) > options.max_bytes:
                self._early_fatal: str | None = (
                    f"the bundle is {len(source)} bytes, "
                    f"larger than the limit of {options.max_bytes} bytes"
                )
            else:
                self._early_fatal = None
            source = io.BytesIO(source)
        else:
            self._early_fatal = None
        self._reader = _LimitedReader(source, options.max_bytes)
        self._options = options
        self._patterns = PatternValidator()
        self._errors: list[ObjectProblem] = []
        self._warnings: list[ObjectProblem] = []
        self._seen = 0
        self._accepted = 0
        self._fatal: str | None = None
        self._versions: dict[bytes, tuple[int, int]] = {}
        self._defined_markings: dict[str, Tlp | None] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._pending_count = 0
        self._validator_options = ValidationOptions(version="2.1")
        self._started = False

    @property
    def pattern_stats(self) -> PatternStats:
        return self._patterns.stats

    @property
    def report(self) -> ImportReport:
        return ImportReport(
            mode=self._options.mode,
            seen=self._seen,
            accepted=self._accepted,
            errors=tuple(self._errors),
            warnings=tuple(self._warnings),
            fatal=self._fatal,
        )

    def __iter__(self) -> Iterator[ImportedObject]:
        if self._started:
            raise RuntimeError("a BundleReader can be iterated once")
        self._started = True
        try:
            if self._early_fatal is not None:
                raise BundleError(self._early_fatal)
            yield from self._run()
        except BundleError as exc:
            self._fatal = exc.reason
            raise
        except _TooLarge:
            self._fatal = f"the bundle is larger than the limit of {self._options.max_bytes} bytes"
            raise BundleError(self._fatal) from None
        except ijson.JSONError as exc:
            self._fatal = f"invalid JSON: {exc}"
            raise BundleError(self._fatal) from None

    # -- the envelope ------------------------------------------------------------------

    def _run(self) -> Iterator[ImportedObject]:
        envelope: dict[str, Any] = {}
        saw_objects = False
        self._reader.recording = bytearray()
        events = ijson.parse(self._reader, use_float=True)
        depth_ok = False
        for prefix, event, value in events:
            if prefix == "" and event == "start_map":
                depth_ok = True
                continue
            if not depth_ok:
                raise BundleError(
                    "a bundle is a JSON object (§8), not a JSON " + event.replace("start_", "")
                )
            if prefix == "" and event == "map_key":
                if value == "objects":
                    saw_objects = True
                    break
                continue
            if prefix in ("type", "id", "spec_version") and event in (
                "string",
                "number",
                "boolean",
                "null",
            ):
                envelope[prefix] = value
        if not depth_ok:
            raise BundleError("empty document: no bundle")
        if saw_objects and "type" in envelope and "id" in envelope:
            self._check_envelope(envelope)
            self._reader.rewind()
            yield from self._objects(ijson.items(self._reader, "objects.item", use_float=True))
        elif saw_objects:
            # type/id come after the objects: watch the top-level events as they stream by.
            self._reader.rewind()
            tail: dict[str, Any] = {}
            watched = self._watch_top_level(ijson.parse(self._reader, use_float=True), tail)
            yield from self._objects(ijson.items(watched, "objects.item"))
            self._check_envelope(tail)
        else:
            self._check_envelope(envelope)
        self._finish()

    @staticmethod
    def _watch_top_level(
        events: Iterator[tuple[str, str, Any]], found: dict[str, Any]
    ) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if prefix in ("type", "id", "spec_version"):
                found[prefix] = value
            yield prefix, event, value

    def _check_envelope(self, envelope: Mapping[str, Any]) -> None:
        if envelope.get("type") != "bundle":
            raise BundleError(f"not a STIX bundle: type is {envelope.get('type')!r} (§8)")
        bundle_id = envelope.get("id")
        if not isinstance(bundle_id, str) or not bundle_id.startswith(_BUNDLE_ID_PREFIX):
            raise BundleError(f"bundle id {bundle_id!r} is not bundle--<UUID> (§8)")
        if "spec_version" in envelope:
            raise BundleError("a STIX 2.1 bundle has no spec_version (this looks like STIX 2.0)")

    # -- objects -----------------------------------------------------------------------

    def _objects(self, items: Iterator[Any]) -> Iterator[ImportedObject]:
        for obj in items:
            index = self._seen
            self._seen += 1
            if self._seen > self._options.max_objects:
                raise BundleError(f"the bundle has more than {self._options.max_objects} objects")
            result = self._check(index, obj)
            if result is not None:
                yield result
                yield from self._release(result)

    def _error(self, index: int, obj: Any, reasons: list[str]) -> None:
        oid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
        details: tuple[str, ...] = ()
        if len(self._errors) < self._options.validator_details and isinstance(obj, dict):
            details = self._validator_messages(obj)
        self._errors.append(ObjectProblem(index, oid, "; ".join(reasons), details))

    def _validator_messages(self, obj: dict[str, Any]) -> tuple[str, ...]:
        try:
            result = validate_instance(obj, self._validator_options)
        except Exception as exc:  # ValidationError, and crashes on shapes it does not expect
            return (f"stix2-validator: {exc}",)
        return tuple(str(e) for e in result.errors)

    def _check(self, index: int, obj: Any) -> ImportedObject | None:
        reasons = check_object(obj)
        if reasons:
            self._error(index, obj, reasons)
            return None
        assert isinstance(obj, dict)
        oid: str = obj["id"]
        kind: str = obj["type"]
        if self._options.thorough:
            messages = self._validator_messages(obj)
            if messages:
                self._errors.append(
                    ObjectProblem(index, oid, "stix2-validator: " + messages[0], messages)
                )
                return None
        observables: tuple[Observable, ...] = ()
        if kind == "indicator" and obj.get("pattern_type") == "stix":
            version = obj.get("pattern_version", "2.1")
            checked = self._patterns.check(
                obj["pattern"], version if isinstance(version, str) else "2.1"
            )
            if checked.errors:
                self._errors.append(
                    ObjectProblem(
                        index,
                        oid,
                        "the pattern does not validate: " + checked.errors[0],
                        checked.errors,
                    )
                )
                return None
            if checked.observable is not None:
                observables = (checked.observable,)
            elif checked.value_problem is not None:
                self._warnings.append(
                    ObjectProblem(index, oid, f"not correlated: {checked.value_problem}")
                )
        elif is_sco(obj):
            try:
                observables = _sco_observables(obj)
            except InvalidObservable as exc:
                self._warnings.append(ObjectProblem(index, oid, f"not correlated: {exc}"))
        if kind == "marking-definition":
            try:
                self._defined_markings[oid] = tlp_of_marking_definition(obj)
            except MarkingError as exc:
                self._errors.append(ObjectProblem(index, oid, str(exc)))
                return None
        if not self._first_version(index, obj):
            return None
        undefined = self._undefined_markings(obj)
        if undefined:
            if self._pending_count >= self._options.max_pending:
                self._errors.append(
                    ObjectProblem(
                        index,
                        oid,
                        f"refers to marking-definition {sorted(undefined)[0]}, not defined "
                        f"before it, and {self._options.max_pending} objects are already "
                        "waiting for markings",
                    )
                )
                return None
            entry = (index, obj, undefined, observables)
            for mid in undefined:
                self._pending.setdefault(mid, []).append(entry)
            self._pending_count += 1
            return None
        return self._accept(index, obj, observables)

    def _first_version(self, index: int, obj: dict[str, Any]) -> bool:
        key = _version_key(obj["id"], obj.get("modified"))
        fingerprint = _fingerprint(obj)
        first = self._versions.get(key)
        if first is None:
            self._versions[key] = (fingerprint, index)
            return True
        if first[0] == fingerprint:
            self._warnings.append(
                ObjectProblem(index, obj["id"], f"an identical copy of object #{first[1]}; dropped")
            )
        else:
            version = obj.get("modified", "(no modified)")
            self._errors.append(
                ObjectProblem(
                    index,
                    obj["id"],
                    f"conflicting versions: object #{first[1]} has the same id and modified "
                    f"{version} but different content",
                )
            )
        return False

    def _marking_refs(self, obj: Mapping[str, Any]) -> list[str]:
        refs = list(obj.get("object_marking_refs", ()))
        for marking in obj.get("granular_markings", ()):
            if "marking_ref" in marking:
                refs.append(marking["marking_ref"])
        return refs

    def _undefined_markings(self, obj: Mapping[str, Any]) -> set[str]:
        return {
            ref
            for ref in self._marking_refs(obj)
            if tlp_for_marking_id(ref) is None and ref not in self._defined_markings
        }

    def _accept(
        self, index: int, obj: dict[str, Any], observables: tuple[Observable, ...]
    ) -> ImportedObject:
        # Granular TLP markings govern the whole object here: VCISC stores an object under one
        # TLP, and the strictest is the only one that never widens (DOMAIN.md §5).
        found: list[Tlp] = []
        for ref in self._marking_refs(obj):
            tlp = tlp_for_marking_id(ref)
            if tlp is None:
                tlp = self._defined_markings.get(ref)
            if tlp is not None:
                found.append(tlp)
        if len(set(found)) > 1:
            self._warnings.append(
                ObjectProblem(
                    index,
                    obj["id"],
                    f"several TLP markings; the strictest ({strictest(found).value}) governs",
                )
            )
        if obj["type"] == "marking-definition" and not found:
            tlp, marked = Tlp.CLEAR, True  # marking definitions are public by nature
        elif found:
            tlp, marked = strictest(found), True
        else:
            tlp, marked = self._options.default_tlp, False
        self._accepted += 1
        return ImportedObject(
            index=index,
            id=obj["id"],
            type=obj["type"],
            modified=obj.get("modified"),
            tlp=tlp,
            tlp_marked=marked,
            observables=observables,
            stix=obj,
        )

    def _release(self, accepted: ImportedObject) -> Iterator[ImportedObject]:
        """Objects that were waiting for the marking definition just accepted."""
        if accepted.type != "marking-definition":
            return
        waiting = self._pending.pop(accepted.id, [])
        for index, obj, undefined, observables in waiting:
            undefined.discard(accepted.id)
            if not undefined:
                self._pending_count -= 1
                yield self._accept(index, obj, observables)

    def _finish(self) -> None:
        reported: set[int] = set()
        for mid, waiting in sorted(self._pending.items()):
            for index, obj, _, _ in waiting:
                if index not in reported:
                    reported.add(index)
                    self._errors.append(
                        ObjectProblem(index, obj["id"], f"unknown marking-definition id {mid}")
                    )
        self._pending.clear()
        self._pending_count = 0
        self._errors.sort(key=lambda p: (p.index is None, p.index or 0))


def read_bundle(source: bytes | str | IO[bytes], options: ImportOptions) -> BundleReader:
    """A streaming reader over ``source`` (bytes, text, or a binary file object)."""
    return BundleReader(source, options)


def import_bundle(source: bytes | str | IO[bytes], options: ImportOptions) -> BundleImport:
    """Read a whole bundle; the objects are empty when the report says it was rejected.

    For bundles too large to hold, iterate :func:`read_bundle` and store as you go.
    """
    reader = read_bundle(source, options)
    try:
        objects = tuple(reader)
    except BundleError:
        return BundleImport((), reader.report)
    report = reader.report
    return BundleImport(() if report.rejected else objects, report)

"""Importing STIX 2.1 bundles: every "Bad input" case of issue 5, TLP 1.0 and 2.0, streaming.

Objects are built by hand here (not by the exporter) so that the importer is tested against
the specification, not against its sibling.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from vcisc.sharing.observables import Observable, ObservableType
from vcisc.sharing.reports import ImportMode
from vcisc.sharing.stix.export import export_engagement
from vcisc.sharing.stix.ids import StixIdMinter
from vcisc.sharing.stix.importer import BundleError, ImportOptions, import_bundle, read_bundle
from vcisc.tlp import Tlp

from .factories import NAMESPACE, engagement

TS = "2026-03-01T08:30:15.123Z"
LATER = "2026-03-02T08:30:15.123Z"
TLP2_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP2_AMBER_STRICT = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
TLP2_RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
TLP2_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
TLP1_WHITE = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
TLP1_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
TLP1_AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
TLP1_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
STATEMENT = "marking-definition--1c9e6b1a-5e0b-4c3e-9a7f-2b6d8e4f0a11"

OPTIONS = ImportOptions(default_tlp=Tlp.AMBER)
SKIP = ImportOptions(default_tlp=Tlp.AMBER, mode=ImportMode.SKIP_INVALID)


def sid(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n, version=4)}"


def indicator(
    n: int, pattern: str = "[ipv4-addr:value = '198.51.100.7']", **extra: Any
) -> dict[str, Any]:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": sid("indicator", n),
        "created": TS,
        "modified": TS,
        "name": f"indicator {n}",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": TS,
        "object_marking_refs": [TLP2_AMBER],
    }
    obj.update(extra)
    return {k: v for k, v in obj.items() if v is not None}


def bundle(*objects: Any, **envelope: Any) -> str:
    body = {"type": "bundle", "id": sid("bundle", 1), "objects": list(objects)}
    body.update(envelope)
    return json.dumps(body)


def tlp1(label: str, mid: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": mid,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": f"TLP:{label.upper()}",
        "definition": {"tlp": label},
    }


def statement() -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": STATEMENT,
        "created": TS,
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2026 CERT-EE"},
    }


# --- the happy path -----------------------------------------------------------------------


def test_exported_engagement_imports_with_every_indicator_and_tlp() -> None:
    snapshot = engagement()
    minter = StixIdMinter(NAMESPACE)
    exported = export_engagement(snapshot, minter=minter).bundle
    result = import_bundle(json.dumps(exported), OPTIONS)
    assert result.report.errors == () and result.report.fatal is None
    assert result.report.accepted == len(exported["objects"])
    by_id = {o.id: o for o in result.objects}
    for item in snapshot.indicators:
        stix_id = minter.sdo_id("indicator", "indicator", item.id)
        if item.observable.type is ObservableType.JA3:
            continue
        imported = by_id[stix_id]
        assert imported.tlp is item.tlp and imported.tlp_marked
        expected = item.observable
        if expected.type is ObservableType.HOSTNAME:  # STIX has one domain-name type
            expected = Observable(ObservableType.DOMAIN, expected.value)
        assert imported.observables == (expected,)


@pytest.mark.parametrize(
    ("ref", "definition", "tlp"),
    [
        (TLP1_WHITE, tlp1("white", TLP1_WHITE), Tlp.CLEAR),
        (TLP1_GREEN, tlp1("green", TLP1_GREEN), Tlp.GREEN),
        (TLP1_AMBER, tlp1("amber", TLP1_AMBER), Tlp.AMBER),
        (TLP1_RED, tlp1("red", TLP1_RED), Tlp.RED),
        (TLP1_AMBER, None, Tlp.AMBER),  # the id alone is enough: the objects are fixed
        (TLP2_AMBER_STRICT, None, Tlp.AMBER_STRICT),
        (TLP2_GREEN, None, Tlp.GREEN),
    ],
)
def test_tlp_1_and_2_markings_are_accepted(
    ref: str, definition: dict[str, Any] | None, tlp: Tlp
) -> None:
    objects = [indicator(1, object_marking_refs=[ref])]
    if definition is not None:
        objects.append(definition)
    result = import_bundle(bundle(*objects), OPTIONS)
    assert result.report.errors == ()
    (imported,) = [o for o in result.objects if o.type == "indicator"]
    assert imported.tlp is tlp and imported.tlp_marked


def test_unmarked_objects_get_the_callers_default_tlp() -> None:
    result = import_bundle(
        bundle(indicator(1, object_marking_refs=None)), ImportOptions(default_tlp=Tlp.RED)
    )
    (imported,) = result.objects
    assert imported.tlp is Tlp.RED and not imported.tlp_marked


def test_several_tlp_markings_strictest_governs_with_a_warning() -> None:
    result = import_bundle(
        bundle(indicator(1, object_marking_refs=[TLP1_GREEN, TLP2_RED])), OPTIONS
    )
    assert result.objects[0].tlp is Tlp.RED
    assert "strictest" in result.report.warnings[0].reason


def test_a_granular_tlp_marking_makes_the_whole_object_stricter() -> None:
    obj = indicator(
        1,
        granular_markings=[{"marking_ref": TLP2_RED, "selectors": ["description"]}],
        description="x",
    )
    result = import_bundle(bundle(obj), OPTIONS)
    assert result.objects[0].tlp is Tlp.RED


def test_statement_marking_defined_after_its_users_is_waited_for() -> None:
    users = [indicator(n, object_marking_refs=[TLP2_AMBER, STATEMENT]) for n in range(1, 4)]
    result = import_bundle(bundle(*users, statement()), OPTIONS)
    assert result.report.errors == ()
    assert sorted(o.index for o in result.objects) == [0, 1, 2, 3]


def test_sco_observables_are_extracted() -> None:
    sco = {
        "type": "file",
        "spec_version": "2.1",
        "id": sid("file", 9),
        "hashes": {"SHA-256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"},
        "name": "a.exe",
    }
    domain = {"type": "domain-name", "id": sid("domain-name", 8), "value": "Evil.Example"}
    result = import_bundle(bundle(sco, domain), OPTIONS)
    observables = {o for obj in result.objects for o in obj.observables}
    assert observables == {
        Observable(
            ObservableType.SHA256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        Observable(ObservableType.FILENAME, "a.exe"),
        Observable(ObservableType.DOMAIN, "evil.example"),
    }


# --- bad input: the whole bundle ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ('{"type": "bundle", "id": "bundle--', "invalid JSON"),
        ('{"type": "bundle", "objects": [}', "invalid JSON"),
        ("not json at all", "invalid JSON"),
        (b"\xff\xfe{}", "invalid JSON"),
        ("", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('"bundle"', "JSON object"),
        (
            json.dumps({"type": "report", "id": sid("report", 1), "objects": []}),
            "not a STIX bundle",
        ),
        (json.dumps({"id": sid("bundle", 1), "objects": []}), "not a STIX bundle"),
        (json.dumps({"type": "bundle", "id": "bundle-1", "objects": []}), "bundle id"),
        (
            json.dumps(
                {"type": "bundle", "id": sid("bundle", 1), "spec_version": "2.0", "objects": []}
            ),
            "STIX 2.0",
        ),
        (bundle(indicator(1)) + "garbage", "invalid JSON"),
    ],
)
@pytest.mark.parametrize("options", [OPTIONS, SKIP], ids=["atomic", "skip-invalid"])
def test_fatal_problems_reject_the_whole_import_in_both_modes(
    data: str | bytes, reason: str, options: ImportOptions
) -> None:
    result = import_bundle(data, options)
    assert result.objects == ()
    assert result.report.rejected
    assert result.report.fatal is not None and reason in result.report.fatal


def test_a_bundle_larger_than_the_limit_is_rejected() -> None:
    data = bundle(*[indicator(n) for n in range(1, 50)])
    small = ImportOptions(default_tlp=Tlp.AMBER, max_bytes=1000)
    assert "limit of 1000 bytes" in (import_bundle(data, small).report.fatal or "")
    streamed = read_bundle(io.BytesIO(data.encode()), small)
    with pytest.raises(BundleError, match="larger than the limit"):
        list(streamed)
    assert streamed.report.rejected


def test_more_objects_than_the_limit_is_rejected() -> None:
    data = bundle(*[indicator(n) for n in range(1, 6)])
    result = import_bundle(data, ImportOptions(default_tlp=Tlp.AMBER, max_objects=4))
    assert result.objects == ()
    assert "more than 4 objects" in (result.report.fatal or "")


def test_truncated_stream_fails_after_yielding_the_objects_before_it() -> None:
    data = bundle(*[indicator(n) for n in range(1, 4)])[:-60]
    reader = read_bundle(io.BytesIO(data.encode()), SKIP)
    seen = []
    with pytest.raises(BundleError, match="invalid JSON"):
        for obj in reader:
            seen.append(obj)
    assert len(seen) == 2  # the caller must roll these back: the report says rejected
    assert reader.report.rejected


# --- bad input: single objects ------------------------------------------------------------

BAD_OBJECTS: list[tuple[str, Any, str]] = [
    ("not an object", "just a string", "not a JSON object"),
    ("no type", {k: v for k, v in indicator(1).items() if k != "type"}, "not a STIX type name"),
    ("bad type", indicator(1, type="Indicator"), "not a STIX type name"),
    ("no id", indicator(1, id=None), "not an identifier"),
    ("id of another type", indicator(1, id=sid("malware", 1)), "does not start with its type"),
    ("id not a uuid", indicator(1, id="indicator--1234"), "not an identifier"),
    ("spec_version 2.0", indicator(1, spec_version="2.0"), "only STIX 2.1"),
    ("no spec_version", indicator(1, spec_version=None), "spec_version is required"),
    ("no created", indicator(1, created=None), "created is required"),
    ("created not a timestamp", indicator(1, created="yesterday"), "not a timestamp"),
    (
        "seconds precision",
        indicator(1, created="2026-03-01T08:30:15Z", modified="2026-03-01T08:30:15Z"),
        "to the millisecond",
    ),
    ("modified before created", indicator(1, created=LATER, modified=TS), "modified is earlier"),
    ("no pattern", indicator(1, pattern=None), "requires the pattern"),
    (
        "valid_until before valid_from",
        indicator(1, valid_until="2020-01-01T00:00:00Z"),
        "valid_until",
    ),
    ("confidence out of range", indicator(1, confidence=101), "confidence"),
    ("bool confidence", indicator(1, confidence=True), "confidence"),
    ("labels empty", indicator(1, labels=[]), "labels"),
    ("bad created_by_ref", indicator(1, created_by_ref="identity-1"), "created_by_ref"),
    (
        "created_by a malware",
        indicator(1, created_by_ref=sid("malware", 3)),
        "must refer to an identity",
    ),
    ("bad property name", indicator(1, **{"bad-name": 1}), "property name"),
    (
        "marking ref not a marking",
        indicator(1, object_marking_refs=[sid("identity", 2)]),
        "marking-definitions",
    ),
    (
        "unknown type",
        {
            "type": "campaignx",
            "spec_version": "2.1",
            "id": sid("campaignx", 1),
            "created": TS,
            "modified": TS,
        },
        "unknown object type",
    ),
    (
        "family without name",
        {
            "type": "malware",
            "spec_version": "2.1",
            "id": sid("malware", 1),
            "created": TS,
            "modified": TS,
            "is_family": True,
        },
        "must have a name",
    ),
    (
        "relationship without target",
        {
            "type": "relationship",
            "spec_version": "2.1",
            "id": sid("relationship", 1),
            "created": TS,
            "modified": TS,
            "relationship_type": "indicates",
            "source_ref": sid("indicator", 1),
        },
        "target_ref",
    ),
    (
        "relationship type upper case",
        {
            "type": "relationship",
            "spec_version": "2.1",
            "id": sid("relationship", 1),
            "created": TS,
            "modified": TS,
            "relationship_type": "Indicates",
            "source_ref": sid("indicator", 1),
            "target_ref": sid("malware", 1),
        },
        "relationship_type",
    ),
    (
        "report without object_refs",
        {
            "type": "report",
            "spec_version": "2.1",
            "id": sid("report", 1),
            "created": TS,
            "modified": TS,
            "name": "r",
            "published": TS,
        },
        "object_refs",
    ),
    (
        "empty refs",
        {
            "type": "note",
            "spec_version": "2.1",
            "id": sid("note", 1),
            "created": TS,
            "modified": TS,
            "content": "x",
            "object_refs": [],
        },
        "non-empty list",
    ),
    (
        "granular without selectors",
        indicator(1, granular_markings=[{"marking_ref": TLP2_RED}]),
        "selectors",
    ),
    ("bad extension key", indicator(1, extensions={"my extension": {"a": 1}}), "extension key"),
    (
        "incident core without determination",
        {
            "type": "incident",
            "spec_version": "2.1",
            "id": sid("incident", 1),
            "created": TS,
            "modified": TS,
            "name": "i",
            "extensions": {
                "extension-definition--ef765651-680c-498d-9894-99799f2fa126": {
                    "extension_type": "property-extension",
                    "investigation_status": "open",
                }
            },
        },
        "determination",
    ),
    (
        "task with a bad outcome",
        {
            "type": "task",
            "spec_version": "2.1",
            "id": sid("task", 1),
            "created": TS,
            "modified": TS,
            "outcome": "done",
            "extensions": {
                "extension-definition--2074a052-8be4-4932-849e-f5e7798e0030": {
                    "extension_type": "new-sdo"
                }
            },
        },
        "outcome",
    ),
    (
        "file without hashes or name",
        {"type": "file", "id": sid("file", 1), "size": 3},
        "hashes or name",
    ),
    (
        "SCO spec_version 2.0",
        {
            "type": "ipv4-addr",
            "id": sid("ipv4-addr", 1),
            "spec_version": "2.0",
            "value": "198.51.100.7",
        },
        "only STIX 2.1",
    ),
    (
        "pattern does not parse",
        indicator(1, pattern="[ipv4-addr:value = '198.51.100.7'"),
        "pattern does not validate",
    ),
    (
        "pattern without brackets",
        indicator(1, pattern="ipv4-addr:value = '198.51.100.7'"),
        "pattern does not validate",
    ),
    (
        "pattern with a bad hash",
        indicator(1, pattern="[file:hashes.MD5 = 'nothex']"),
        "not a valid MD5 hash",
    ),
    (
        "unknown marking id",
        indicator(
            1, object_marking_refs=["marking-definition--00000000-0000-4000-8000-000000000000"]
        ),
        "unknown marking-definition id",
    ),
    (
        "wrong TLP 2.0 id",
        {
            **copy.deepcopy(tlp1("white", TLP1_WHITE)),
            "id": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8488",
            "definition_type": "tlp",
        },
        "not one",
    ),
]


@pytest.mark.parametrize(("case", "obj", "reason"), BAD_OBJECTS, ids=[c for c, _, _ in BAD_OBJECTS])
def test_each_invalid_object_is_reported_with_its_reason(case: str, obj: Any, reason: str) -> None:
    good = indicator(100)
    result = import_bundle(bundle(good, obj), SKIP)
    assert result.report.fatal is None
    (error,) = result.report.errors
    assert error.index == 1
    assert reason in error.reason, error.reason
    # Skip mode: the valid object still goes in.
    assert [o.id for o in result.objects] == [good["id"]]
    # Atomic mode: nothing goes in, the same error is reported.
    atomic = import_bundle(bundle(good, obj), OPTIONS)
    assert atomic.objects == () and atomic.report.rejected
    assert [e.reason for e in atomic.report.errors] == [error.reason]


def test_invalid_objects_carry_stix2_validators_own_wording() -> None:
    result = import_bundle(bundle(indicator(1, confidence=101)), SKIP)
    (error,) = result.report.errors
    assert any("confidence" in detail for detail in error.details)


def test_thorough_mode_runs_stix2_validator_on_valid_looking_objects() -> None:
    # A kill chain phase without phase_name passes the direct checks; the JSON schema catches it.
    obj = indicator(1, kill_chain_phases=[{"kill_chain_name": "lockheed"}])
    assert import_bundle(bundle(obj), SKIP).report.errors == ()
    thorough = ImportOptions(default_tlp=Tlp.AMBER, mode=ImportMode.SKIP_INVALID, thorough=True)
    errors = import_bundle(bundle(obj), thorough).report.errors
    assert errors and "phase_name" in errors[0].reason


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_id_with_conflicting_content_is_an_error_the_first_stands() -> None:
    first = indicator(1, name="first")
    second = indicator(1, name="second")
    result = import_bundle(bundle(first, second), SKIP)
    assert [o.stix["name"] for o in result.objects] == ["first"]
    (error,) = result.report.errors
    assert error.index == 1 and "conflicting versions" in error.reason and "#0" in error.reason
    assert import_bundle(bundle(first, second), OPTIONS).report.rejected


def test_identical_copies_are_dropped_with_a_warning() -> None:
    obj = indicator(1)
    reordered = dict(reversed(list(obj.items())))
    result = import_bundle(bundle(obj, reordered), OPTIONS)
    assert not result.report.rejected
    assert len(result.objects) == 1
    assert "identical copy" in result.report.warnings[0].reason


def test_versions_with_different_modified_are_both_kept() -> None:
    result = import_bundle(bundle(indicator(1), indicator(1, modified=LATER, name="v2")), OPTIONS)
    assert [o.modified for o in result.objects] == [TS, LATER]


def test_simple_pattern_with_a_nonsense_value_is_imported_but_not_correlated() -> None:
    result = import_bundle(bundle(indicator(1, pattern="[ipv4-addr:value = '999.1.1.1']")), OPTIONS)
    assert result.objects[0].observables == ()
    assert "not correlated" in result.report.warnings[0].reason


def test_never_defined_statement_marking_is_an_error_for_its_users() -> None:
    result = import_bundle(bundle(indicator(1, object_marking_refs=[TLP2_AMBER, STATEMENT])), SKIP)
    assert result.objects == ()
    assert f"unknown marking-definition id {STATEMENT}" in result.report.errors[0].reason


def test_objects_waiting_for_markings_are_bounded() -> None:
    users = [indicator(n, object_marking_refs=[STATEMENT]) for n in range(1, 5)]
    options = ImportOptions(default_tlp=Tlp.AMBER, mode=ImportMode.SKIP_INVALID, max_pending=2)
    result = import_bundle(bundle(*users, statement()), options)
    assert len(result.report.errors) == 2
    assert sorted(o.index for o in result.objects) == [0, 1, 4]


# --- streaming ----------------------------------------------------------------------------


class ChunkedStream(io.RawIOBase):
    """A non-seekable stream that hands out a generated bundle in small chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def generated(count: int, envelope_last: bool = False) -> Iterator[bytes]:
    head = (
        b'{"objects": ['
        if envelope_last
        else f'{{"type": "bundle", "id": "{sid("bundle", 1)}", "objects": ['.encode()
    )
    yield head
    for n in range(count):
        yield (b"," if n else b"") + json.dumps(
            indicator(n + 1, pattern=f"[domain-name:value = 'h{n}.example']")
        ).encode()
    yield f'], "type": "bundle", "id": "{sid("bundle", 1)}"}}'.encode() if envelope_last else b"]}"


@pytest.mark.parametrize("envelope_last", [False, True])
def test_a_large_bundle_streams_from_a_non_seekable_source(envelope_last: bool) -> None:
    reader = read_bundle(io.BufferedReader(ChunkedStream(generated(5000, envelope_last))), OPTIONS)
    count = 0
    for obj in reader:
        assert obj.observables == (Observable(ObservableType.DOMAIN, f"h{count}.example"),)
        count += 1
    assert count == 5000 == reader.report.accepted
    assert reader.pattern_stats.fast == 5000 and reader.pattern_stats.reference == 0


def test_envelope_after_the_objects_is_still_checked() -> None:
    tail = b'], "type": "report", "id": "x"}'
    chunks = iter([b'{"objects": [', json.dumps(indicator(1)).encode(), tail])
    with pytest.raises(BundleError, match="not a STIX bundle"):
        list(read_bundle(io.BufferedReader(ChunkedStream(chunks)), OPTIONS))


def test_a_reader_is_iterated_once() -> None:
    reader = read_bundle(bundle(indicator(1)), OPTIONS)
    list(reader)
    with pytest.raises(RuntimeError):
        list(reader)


def test_validator_wording_is_added_only_for_the_first_errors() -> None:
    objects = [indicator(n, confidence=101) for n in range(1, 5)]
    options = ImportOptions(
        default_tlp=Tlp.AMBER, mode=ImportMode.SKIP_INVALID, validator_details=2
    )
    errors = import_bundle(bundle(*objects), options).report.errors
    assert [bool(e.details) for e in errors] == [True, True, False, False]

"""MISP: the TLP → distribution table, event export through PyMISP and back, feeds, bad input.

MISP core format (draft-dulaunoy-misp-core-format) §2.2 events and §2.3 attributes; PyMISP's
describeTypes is the reference for type/category pairs.
"""

from __future__ import annotations

import json
import uuid
from itertools import pairwise, product
from typing import Any

import pytest
from pymisp import MISPEvent
from pymisp.abstract import describe_types

from vcisc.sharing.misp.distribution import (
    MAX_DISTRIBUTION,
    Distribution,
    UnknownTlpTag,
    distribution_allowed,
    tlp_from_tags,
    tlp_tag,
)
from vcisc.sharing.misp.export import MispExportError, MispOrganisation, export_event, feed_files
from vcisc.sharing.misp.importer import import_event, import_feed
from vcisc.sharing.observables import Observable, ObservableType
from vcisc.sharing.reports import ImportMode
from vcisc.tlp import Tlp

from .factories import INDICATORS, NAMESPACE, engagement

CREATOR = MispOrganisation("VCISC secretariat", uuid.UUID("5f0e8c1a-3b7d-4e2f-9a6c-1d2e3f4a5b6c"))
D = Distribution

# The table, written out independently of the module: TLP → the distributions it allows.
ALLOWED: dict[Tlp, set[Distribution]] = {
    Tlp.CLEAR: {D.ORGANISATION, D.COMMUNITY, D.CONNECTED_COMMUNITIES, D.ALL_COMMUNITIES},
    Tlp.GREEN: {D.ORGANISATION, D.COMMUNITY},
    Tlp.AMBER: {D.ORGANISATION},
    Tlp.AMBER_STRICT: {D.ORGANISATION},
    Tlp.RED: {D.ORGANISATION},
}


@pytest.mark.parametrize(("tlp", "distribution"), list(product(Tlp, Distribution)))
def test_distribution_table_exhaustively(tlp: Tlp, distribution: Distribution) -> None:
    assert distribution_allowed(tlp, distribution) is (distribution in ALLOWED[tlp])
    assert MAX_DISTRIBUTION[tlp] == max(ALLOWED[tlp])


@pytest.mark.parametrize(("tlp", "event"), list(product(Tlp, Distribution)))
def test_inherit_is_judged_by_the_event(tlp: Tlp, event: Distribution) -> None:
    expected = event in ALLOWED[tlp]
    assert distribution_allowed(tlp, D.INHERIT, event) is expected
    assert distribution_allowed(tlp, D.INHERIT) is False


def test_no_tlp_widens_as_the_table_goes_down() -> None:
    order = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]
    for wider, narrower in pairwise(order):
        assert ALLOWED[narrower] <= ALLOWED[wider]


@pytest.mark.parametrize(
    ("tags", "tlp"),
    [
        (["tlp:clear"], Tlp.CLEAR),
        (["tlp:white"], Tlp.CLEAR),
        (["TLP:GREEN"], Tlp.GREEN),
        (["tlp:amber+strict"], Tlp.AMBER_STRICT),
        (["tlp:green", "tlp:red"], Tlp.RED),
        (['osint:source-type="blog-post"'], None),
        ([], None),
    ],
)
def test_tlp_from_tags(tags: list[str], tlp: Tlp | None) -> None:
    assert tlp_from_tags(tags) is tlp


def test_unknown_tlp_tag_is_refused() -> None:
    with pytest.raises(UnknownTlpTag):
        tlp_from_tags(["tlp:ex:chr"])
    assert [tlp_tag(t) for t in Tlp] == [
        "tlp:clear",
        "tlp:green",
        "tlp:amber",
        "tlp:amber+strict",
        "tlp:red",
    ]


# --- export -------------------------------------------------------------------------------


def exported(**kwargs: Any) -> Any:
    return export_event(engagement(), namespace=NAMESPACE, creator=CREATOR, **kwargs)


def test_export_loads_in_pymisp_with_valid_pairs_and_tlp_tags() -> None:
    result = exported()
    event = MISPEvent(strict_validation=True)
    event.load(json.dumps(result.event))
    assert event.info.startswith("RFA-2026-0042")
    assert [t.name for t in event.tags] == ["tlp:amber+strict"]
    assert int(event.distribution) == 0
    assert len(event.attributes) == len(INDICATORS)
    mappings = describe_types["category_type_mappings"]
    for attribute in result.event["Event"]["Attribute"]:
        assert attribute["type"] in mappings[attribute["category"]]
    for attribute in event.attributes:
        (tag,) = attribute.tags
        assert tag.name.startswith("tlp:")
        assert distribution_allowed(
            tlp_from_tags([tag.name]) or Tlp.RED, D(int(attribute.distribution))
        )


def test_event_tlp_is_the_strictest_and_distribution_never_wider() -> None:
    result = exported()
    assert result.tlp is Tlp.AMBER_STRICT  # the hostname indicator is AMBER+STRICT
    assert result.distribution is D.ORGANISATION
    only_clear = export_event(
        engagement(
            indicators=[(ObservableType.CIDR, "203.0.113.0/24", Tlp.CLEAR)], incident_tlp=Tlp.CLEAR
        ),
        namespace=NAMESPACE,
        creator=CREATOR,
    )
    assert only_clear.distribution is D.ALL_COMMUNITIES
    green = export_event(
        engagement(
            indicators=[(ObservableType.CIDR, "203.0.113.0/24", Tlp.CLEAR)], incident_tlp=Tlp.GREEN
        ),
        namespace=NAMESPACE,
        creator=CREATOR,
    )
    assert green.distribution is D.COMMUNITY
    (attribute,) = green.event["Event"]["Attribute"]
    assert attribute["distribution"] == 1  # CLEAR would allow 3, the event allows 1


@pytest.mark.parametrize(
    "distribution",
    [D.CONNECTED_COMMUNITIES, D.ALL_COMMUNITIES, D.SHARING_GROUP, D.INHERIT, D.COMMUNITY],
)
def test_asking_for_a_wider_distribution_is_refused(distribution: Distribution) -> None:
    with pytest.raises(MispExportError, match="wider than"):
        exported(distribution=distribution)


def test_red_needs_an_explicit_opt_in() -> None:
    rows = [
        (ObservableType.IPV4, "198.51.100.7", Tlp.RED),
        (ObservableType.IPV4, "198.51.100.8", Tlp.GREEN),
    ]
    result = export_event(engagement(indicators=rows), namespace=NAMESPACE, creator=CREATOR)
    assert [s.id for s in result.skipped] == ["ind-0"]
    assert [a["value"] for a in result.event["Event"]["Attribute"]] == ["198.51.100.8"]
    with_red = export_event(
        engagement(indicators=rows), namespace=NAMESPACE, creator=CREATOR, allow_red=True
    )
    assert with_red.tlp is Tlp.RED and with_red.distribution is D.ORGANISATION
    assert len(with_red.event["Event"]["Attribute"]) == 2
    with pytest.raises(MispExportError, match="TLP:RED"):
        export_event(
            engagement(indicators=rows, incident_tlp=Tlp.RED), namespace=NAMESPACE, creator=CREATOR
        )


def test_export_is_stable() -> None:
    assert json.dumps(exported().event) == json.dumps(exported().event)


# --- round trip ---------------------------------------------------------------------------


def test_round_trip_through_pymisp_keeps_every_indicator_and_its_tlp() -> None:
    snapshot = engagement()
    result = export_event(snapshot, namespace=NAMESPACE, creator=CREATOR)
    event = MISPEvent()
    event.load(json.dumps(result.event))
    imported = import_event(event.to_json(), default_tlp=Tlp.CLEAR)
    assert imported.report.errors == () and not imported.report.rejected
    assert imported.tlp is result.tlp
    got = {(i.observable, i.tlp, i.to_ids) for i in imported.indicators}
    expected = {(i.observable, i.tlp, i.for_detection) for i in snapshot.indicators}
    assert got == expected
    assert all(i.tlp_marked for i in imported.indicators)


# --- import -------------------------------------------------------------------------------


def event_json(
    *attributes: dict[str, Any], tags: list[str] | None = None, **event: Any
) -> dict[str, Any]:
    body = {
        "uuid": "3c6a1f0e-2b9d-4c8e-8f7a-6b5c4d3e2f10",
        "info": "Phishing wave",
        "date": "2026-03-01",
        "threat_level_id": "2",
        "analysis": "1",
        "distribution": "0",
        "Tag": [{"name": t} for t in (tags if tags is not None else ["tlp:amber"])],
        "Attribute": list(attributes),
    }
    body.update(event)
    return {"Event": body}


def attr(
    type_: str, value: str, category: str | None = "Network activity", **extra: Any
) -> dict[str, Any]:
    body = {"uuid": str(uuid.uuid4()), "type": type_, "value": value, "to_ids": True, **extra}
    if category is not None:
        body["category"] = category
    return body


def test_composite_and_object_attributes_are_read() -> None:
    data = event_json(
        attr("domain|ip", "evil.example|198.51.100.7"),
        attr(
            "filename|sha256",
            "a.exe|E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "Payload delivery",
        ),
        attr("ip-src", "2001:db8::/32"),
        Object=[{"name": "domain-ip", "Attribute": [attr("hostname", "Mail.Evil.Example", None)]}],
    )
    result = import_event(json.dumps(data), default_tlp=Tlp.CLEAR)
    assert result.report.errors == ()
    assert {i.observable for i in result.indicators} == {
        Observable(ObservableType.DOMAIN, "evil.example"),
        Observable(ObservableType.IPV4, "198.51.100.7"),
        Observable(ObservableType.FILENAME, "a.exe"),
        Observable(
            ObservableType.SHA256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        Observable(ObservableType.CIDR, "2001:db8::/32"),
        Observable(ObservableType.HOSTNAME, "mail.evil.example"),
    }


def test_attribute_tlp_tag_governs_else_the_events_else_the_default() -> None:
    data = event_json(
        attr("domain", "a.example", Tag=[{"name": "tlp:red"}]), attr("domain", "b.example")
    )
    result = import_event(data, default_tlp=Tlp.CLEAR)
    assert [(i.observable.value, i.tlp) for i in result.indicators] == [
        ("a.example", Tlp.RED),
        ("b.example", Tlp.AMBER),
    ]
    untagged = import_event(
        event_json(attr("domain", "c.example"), tags=[]), default_tlp=Tlp.AMBER_STRICT
    )
    (only,) = untagged.indicators
    assert only.tlp is Tlp.AMBER_STRICT and not only.tlp_marked


def test_distribution_wider_than_the_tlp_is_a_warning_not_a_widening() -> None:
    data = event_json(attr("domain", "a.example", distribution="3"), distribution="3")
    result = import_event(data, default_tlp=Tlp.CLEAR)
    assert result.indicators[0].tlp is Tlp.AMBER
    assert len(result.report.warnings) == 2


def test_valid_types_that_are_not_indicators_are_skipped_and_listed() -> None:
    data = event_json(attr("text", "free text", "Other"), attr("domain", "a.example"))
    result = import_event(data, default_tlp=Tlp.CLEAR)
    assert [i.observable.value for i in result.indicators] == ["a.example"]
    assert "not an indicator type" in result.report.skipped[0].reason
    assert not result.report.rejected


BAD_ATTRIBUTES = [
    (
        "invalid pair",
        attr("md5", "d41d8cd98f00b204e9800998ecf8427e", "Network activity"),
        "not allowed in category",
    ),
    ("invalid pair 2", attr("regkey", "HKLM\\x", "Network activity"), "not allowed in category"),
    ("unknown type", attr("ipv4", "198.51.100.7"), "unknown MISP attribute type"),
    ("unknown category", attr("domain", "a.example", "Networking"), "unknown MISP category"),
    ("invalid value", attr("ip-dst", "999.1.1.1"), "invalid ipv4 value"),
    ("wrong hash length", attr("md5", "abc", "Payload delivery"), "expected 32 hex digits"),
    ("no value", attr("domain", ""), "no value"),
    ("bad distribution", attr("domain", "a.example", distribution="7"), "distribution"),
    ("bad to_ids", attr("domain", "a.example", to_ids="maybe"), "to_ids"),
    (
        "unknown tlp tag",
        attr("domain", "a.example", Tag=[{"name": "tlp:purple"}]),
        "unknown TLP tag",
    ),
]


@pytest.mark.parametrize(
    ("case", "bad", "reason"), BAD_ATTRIBUTES, ids=[c for c, _, _ in BAD_ATTRIBUTES]
)
def test_invalid_attributes_are_reported_with_the_reason(
    case: str, bad: dict[str, Any], reason: str
) -> None:
    data = event_json(attr("domain", "good.example"), bad)
    skip = import_event(data, default_tlp=Tlp.CLEAR, mode=ImportMode.SKIP_INVALID)
    (error,) = skip.report.errors
    assert error.index == 1 and reason in error.reason, error.reason
    assert [i.observable.value for i in skip.indicators] == ["good.example"]
    atomic = import_event(data, default_tlp=Tlp.CLEAR)
    assert atomic.indicators == () and atomic.report.rejected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "not a MISP event"),
        (json.dumps({"Event": {"uuid": str(uuid.uuid4())}}), "no info"),
        (json.dumps(event_json(uuid="not-a-uuid")), "not a UUID"),
        (json.dumps(event_json(distribution="5")), "event distribution"),
        (json.dumps(event_json(threat_level_id="9")), "threat_level_id"),
        (json.dumps(event_json(analysis="3")), "analysis"),
        (json.dumps(event_json(date="01/03/2026")), "YYYY-MM-DD"),
        (json.dumps(event_json(tags=["tlp:unknown"])), "unknown TLP tag"),
    ],
)
def test_invalid_events_are_rejected_whole(data: str, reason: str) -> None:
    for mode in ImportMode:
        result = import_event(data, default_tlp=Tlp.CLEAR, mode=mode)
        assert result.report.rejected and result.indicators == ()
        assert result.report.fatal is not None and reason in result.report.fatal


def test_api_response_wrapper_is_accepted() -> None:
    data = {"response": [event_json(attr("domain", "a.example"))]}
    assert len(import_event(data, default_tlp=Tlp.CLEAR).indicators) == 1


# --- feeds --------------------------------------------------------------------------------


def test_feed_round_trip() -> None:
    files = feed_files([exported()])
    manifest = files["manifest.json"]
    (event_uuid,) = manifest
    assert manifest[event_uuid]["Tag"] == [{"name": "tlp:amber+strict"}]
    blobs = {name: json.dumps(body).encode() for name, body in files.items()}
    result = import_feed(
        blobs["manifest.json"], lambda u: blobs.get(f"{u}.json"), default_tlp=Tlp.CLEAR
    )
    assert result.report.errors == ()
    (event,) = result.events
    assert len(event.indicators) == len(INDICATORS)


def test_feed_problems_are_reported_per_event() -> None:
    good = exported().event
    good_uuid = good["Event"]["uuid"]
    other_uuid = str(uuid.uuid4())
    missing_uuid = str(uuid.uuid4())
    manifest = {
        good_uuid: {"info": "x"},
        other_uuid: {"info": "y"},
        missing_uuid: {"info": "z"},
        "nope": {},
    }
    blobs = {
        good_uuid: json.dumps(good),
        other_uuid: json.dumps(good),
    }  # other's file holds the wrong event
    result = import_feed(
        json.dumps(manifest), blobs.get, default_tlp=Tlp.CLEAR, mode=ImportMode.SKIP_INVALID
    )
    reasons = sorted(e.reason for e in result.report.errors)
    assert len(reasons) == 3
    assert any("missing" in r for r in reasons)
    assert any("as the manifest says" in r for r in reasons)
    assert any("manifest entry" in r for r in reasons)
    assert [e.event_uuid for e in result.events] == [good_uuid]
    atomic = import_feed(json.dumps(manifest), blobs.get, default_tlp=Tlp.CLEAR)
    assert atomic.events == () and atomic.report.rejected


def test_feed_manifest_must_be_json_object() -> None:
    assert import_feed("[]", lambda u: None, default_tlp=Tlp.CLEAR).report.fatal
    assert import_feed("{", lambda u: None, default_tlp=Tlp.CLEAR).report.fatal

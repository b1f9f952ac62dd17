"""The TAXII 2.1 server driven by the OASIS taxii2-client against a live server on 127.0.0.1:
discovery, collections, paginated reads, every filter, POST with status polling, versions,
manifest, delete, the error codes, and need-to-know (the API's scoping, over TAXII)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from taxii2client.v21 import ApiRoot, as_pages

from tests.conftest import Federation, accepted_engagement
from tests.taxii.conftest import collection
from vcisc.audit.models import AuditRecord
from vcisc.engagements.models import Indicator
from vcisc.sharing.taxii.scopes import FEDERATION_SCOPES
from vcisc.tlp import Tlp

MEDIA = "application/taxii+json;version=2.1"
CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
FED_GREEN = next(str(k) for k, v in FEDERATION_SCOPES.items() if v is Tlp.GREEN)
FED_CLEAR = next(str(k) for k, v in FEDERATION_SCOPES.items() if v is Tlp.CLEAR)

Taxii = Callable[[str], ApiRoot]


def indicator(
    n: int, marking: str = GREEN, *, oid: str | None = None, modified: str = "2026-01-01"
) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": oid or f"indicator--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": f"{modified}T00:00:00.000Z",
        "name": f"c2 {n}",
        "pattern": f"[ipv4-addr:value = '198.51.{n // 250}.{n % 250 + 1}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [marking],
    }


def envelope(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"objects": list(objects)}


def ids_of(pages: Any) -> list[str]:
    return [o["id"] for p in pages for o in p.get("objects", [])]


def raw(root: ApiRoot, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Accept": MEDIA, **kw.pop("headers", {})}
    return root._conn.session.request(method, root.url + path, headers=headers, **kw)


# --- discovery, collections ---------------------------------------------------------------


def test_discovery_api_root_and_collections_follow_participation(
    taxii: Taxii, federation: Federation
) -> None:
    eng = accepted_engagement(federation, "amber")
    de = taxii("de")
    assert de.title == "VCISC" and de.versions == [MEDIA] and de.max_content_length > 0
    titles = {c.id: (c.title, c.can_read, c.can_write) for c in de.collections}
    assert set(titles) == {FED_CLEAR, FED_GREEN, eng}
    assert titles[FED_GREEN] == ("Federation TLP:GREEN", True, True)
    assert titles[eng][1:] == (True, True) and titles[eng][0].startswith("Engagement RFA-")
    # Routed-only (fr was not routed here), uninvolved, the secretariat: federation only.
    for who in ("fr", "us", "coordinator"):
        assert {c.id for c in taxii(who).collections} == {FED_CLEAR, FED_GREEN}, who
    # An observer sees no collection at all; an admin reads the federation but cannot write.
    assert taxii("am").collections == []
    admin = {c.id: c.can_write for c in taxii("admin").collections}
    assert admin == {FED_CLEAR: False, FED_GREEN: False}


# --- POST, status, paginated reads --------------------------------------------------------


def test_post_with_status_polling_then_a_paginated_read_with_next(
    taxii: Taxii, federation: Federation
) -> None:
    eng = accepted_engagement(federation, "amber")
    de = taxii("de")
    col = collection(de, eng)
    sent = [indicator(n) for n in range(25)]
    status = col.add_objects(envelope(*sent), wait_for_completion=False)
    assert (status.status, status.total_count, status.success_count) == ("complete", 25, 25)
    polled = de.get_status(status.id)  # the trailing-slash URL
    status.refresh()  # the client's own …/status/{id} URL
    assert polled.success_count == status.success_count == 25 and polled.failure_count == 0
    assert {s["id"] for s in polled.successes} == {o["id"] for o in sent}
    # Another user's status does not exist for them.
    assert raw(taxii("de_analyst"), "GET", f"status/{status.id}/").status_code == 404
    # The indicators joined the engagement (correlation, the API) through the one write path.
    listed = federation.api("ee").get(f"/engagements/{eng}/indicators").json()
    assert len(listed) == 25 and Indicator.objects.filter(engagement_id=eng).count() == 25
    assert AuditRecord.objects.filter(action="taxii.add").count() == 1

    pages = list(as_pages(col.get_objects, per_request=10, type="indicator"))
    assert [len(p["objects"]) for p in pages] == [10, 10, 5]
    assert [p["more"] for p in pages] == [True, True, False]
    assert "next" in pages[0] and "next" not in pages[-1]
    assert ids_of(pages) == [o["id"] for o in sent]  # date-added order, each object once
    # The posted indicators are not materialised a second time from the engagement.
    everything = ids_of(as_pages(col.get_objects, per_request=7))
    assert len(everything) == len(set(everything))
    assert sum(i.startswith("indicator--") for i in everything) == 25
    assert any(i.startswith("incident--") for i in everything)


def test_date_added_headers_and_added_after(taxii: Taxii, federation: Federation) -> None:
    de = taxii("de")
    col = collection(de, FED_GREEN)
    first = [indicator(n) for n in range(3)]
    col.add_objects(envelope(*first), wait_for_completion=False)
    later = [indicator(n + 10) for n in range(2)]
    col.add_objects(envelope(*later), wait_for_completion=False)
    resp = raw(de, "GET", f"collections/{FED_GREEN}/objects/", params={"limit": "3"})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == MEDIA
    body = resp.json()
    assert [o["id"] for o in body["objects"]] == [o["id"] for o in first]
    last = resp.headers["X-TAXII-Date-Added-Last"]
    assert resp.headers["X-TAXII-Date-Added-First"] < last
    after = col.get_objects(added_after=last)
    assert [o["id"] for o in after["objects"]] == [o["id"] for o in later]
    assert after["more"] is False
    manifest = col.get_manifest()["objects"]
    assert manifest[2]["date_added"] == last and len(manifest) == 5
    assert all(m["media_type"] == "application/stix+json;version=2.1" for m in manifest)


# --- filters, versions, manifest, delete --------------------------------------------------


def test_every_match_filter(taxii: Taxii, federation: Federation) -> None:
    de = taxii("de")
    col = collection(de, FED_GREEN)
    oid = f"indicator--{uuid.uuid4()}"
    v1, v2, v3 = (
        indicator(1, oid=oid, modified=d) for d in ("2026-01-01", "2026-02-01", "2026-03-01")
    )
    other = indicator(2)
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": f"ipv4-addr--{uuid.uuid4()}",
        "value": "203.0.113.9",
        "object_marking_refs": [GREEN],
    }
    col.add_objects(envelope(v1, other, v3), wait_for_completion=False)
    col.add_objects(envelope(v2, sco), wait_for_completion=False)

    def get(**kw: Any) -> list[tuple[str, str | None]]:
        return [(o["id"], o.get("modified")) for o in col.get_objects(**kw).get("objects", [])]

    assert get(id=oid) == [(oid, v3["modified"])]  # the last version by default
    assert get(id=oid, version="first") == [(oid, v1["modified"])]
    assert sorted(get(id=oid, version="all")) == sorted((oid, v["modified"]) for v in (v1, v2, v3))
    assert get(id=oid, version="first,last") == [(oid, v1["modified"]), (oid, v3["modified"])]
    assert get(id=oid, version=v2["modified"]) == [(oid, v2["modified"])]
    assert get(type="ipv4-addr") == [(sco["id"], None)]
    assert {i for i, _ in get(type=["indicator", "ipv4-addr"])} == {oid, other["id"], sco["id"]}
    assert len(get(spec_version="2.1")) == 3 and get(spec_version="2.0") == []
    assert get(limit=1) == [(oid, v3["modified"])] or len(get(limit=1)) == 1
    # One object, its versions (date-added order), its manifest entries.
    assert [o["modified"] for o in col.get_object(oid)["objects"]] == [v3["modified"]]
    versions = col.object_versions(oid)
    assert versions["versions"] == [
        "2026-01-01T00:00:00.000000Z",
        "2026-03-01T00:00:00.000000Z",
        "2026-02-01T00:00:00.000000Z",
    ]
    assert [m["version"] for m in col.get_manifest(id=oid, version="all")["objects"]] == versions[
        "versions"
    ]
    # Delete one version, then the rest: the object is gone.
    col.delete_object(oid, version=v3["modified"])
    assert get(id=oid) == [(oid, v2["modified"])]
    col.delete_object(oid)
    assert raw(de, "GET", f"collections/{FED_GREEN}/objects/{oid}/").status_code == 404
    assert AuditRecord.objects.filter(action="taxii.delete").count() == 2
    # Another organisation cannot delete what de posted.
    us = raw(taxii("us"), "DELETE", f"collections/{FED_GREEN}/objects/{other['id']}/")
    assert us.status_code == 403 and us.json()["http_status"] == "403"


# --- need-to-know -------------------------------------------------------------------------


def test_a_non_participant_sees_neither_the_collection_nor_its_objects(
    taxii: Taxii, federation: Federation
) -> None:
    eng = accepted_engagement(federation, "green")
    collection(taxii("de"), eng).add_objects(envelope(indicator(1)), wait_for_completion=False)
    missing = str(uuid.uuid4())
    for who in ("fr", "us", "coordinator", "am"):
        root = taxii(who)
        for suffix in ("", "objects/", "manifest/"):
            hidden = raw(root, "GET", f"collections/{eng}/{suffix}")
            absent = raw(root, "GET", f"collections/{missing}/{suffix}")
            assert hidden.status_code == absent.status_code == 404, (who, suffix)
            assert hidden.json()["description"].replace(eng, "X") == absent.json()[
                "description"
            ].replace(missing, "X")
            assert hidden.json()["title"] == absent.json()["title"]
        post = raw(
            root,
            "POST",
            f"collections/{eng}/objects/",
            data=json.dumps(envelope(indicator(2))),
            headers={"Content-Type": MEDIA},
        )
        assert post.status_code == 404, who


def test_tlp_red_objects_reach_named_members_only(taxii: Taxii, federation: Federation) -> None:
    eng = accepted_engagement(federation, "amber")
    de = collection(taxii("de"), eng)  # de's liaison is a named member
    red, amber = indicator(1, RED), indicator(2, AMBER)
    de.add_objects(envelope(amber), wait_for_completion=False)
    de.add_objects(envelope(red), wait_for_completion=False)
    assert {o["id"] for o in de.get_objects(type="indicator")["objects"]} == {
        red["id"],
        amber["id"],
    }
    analyst_root = taxii("de_analyst")  # same organisation, not a named member
    analyst = collection(analyst_root, eng)
    assert [o["id"] for o in analyst.get_objects(type="indicator")["objects"]] == [amber["id"]]
    assert analyst.get_manifest(id=red["id"]).get("objects", []) == []
    for path in (f"objects/{red['id']}/", f"objects/{red['id']}/versions/"):
        assert raw(analyst_root, "GET", f"collections/{eng}/{path}").status_code == 404
    # Headers and pagination count only what the analyst may read.
    resp = raw(
        analyst_root, "GET", f"collections/{eng}/objects/", params={"match[type]": "indicator"}
    )
    mine = raw(taxii("de"), "GET", f"collections/{eng}/objects/", params={"match[id]": amber["id"]})
    assert resp.headers["X-TAXII-Date-Added-Last"] == mine.headers["X-TAXII-Date-Added-Last"]
    assert resp.json()["more"] is False
    # Nor may the analyst write TLP:RED: a failure in the status, nothing stored.
    status = analyst.add_objects(envelope(indicator(3, RED)), wait_for_completion=False)
    assert (status.success_count, status.failure_count) == (0, 1)
    assert "named members" in status.failures[0]["message"]
    assert not Indicator.objects.filter(engagement_id=eng, value="198.51.0.4").exists()


def test_items_added_through_the_api_appear_in_the_collection(
    taxii: Taxii, federation: Federation
) -> None:
    eng = accepted_engagement(federation, "amber")
    api = federation.api("ee")
    assert api.post(f"/engagements/{eng}/indicators", {"value": "evil.example"}).status_code == 201
    col = collection(taxii("ee"), eng)
    found = col.get_objects(type="indicator")["objects"]
    assert [o["pattern"] for o in found] == ["[domain-name:value = 'evil.example']"]
    again = col.get_objects(type="indicator")["objects"]
    assert again == found  # materialised once
    api.post(f"/engagements/{eng}/indicators", {"value": "198.51.100.77", "tlp": "red"})
    # ee's liaison (the requester) is a named member; the analyst of the same org is not.
    assert len(col.get_objects(type="indicator")["objects"]) == 2
    hidden = collection(taxii("ee_analyst"), eng).get_objects(type="indicator")["objects"]
    assert [o["pattern"] for o in hidden] == ["[domain-name:value = 'evil.example']"]


def test_federation_scopes_refuse_stricter_markings(taxii: Taxii, federation: Federation) -> None:
    col = collection(taxii("de"), FED_CLEAR)
    status = col.add_objects(
        envelope(indicator(1, CLEAR), indicator(2, GREEN), indicator(3, AMBER)),
        wait_for_completion=False,
    )
    assert (status.success_count, status.failure_count) == (1, 2)
    assert {
        o["object_marking_refs"][0]
        for o in collection(taxii("us"), FED_CLEAR).get_objects()["objects"]
    } == {CLEAR}


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers", "params", "body", "code"),
    [
        ("GET", "collections/", {"Accept": "application/json"}, {}, None, 406),
        ("GET", "collections/", {"Accept": "application/taxii+json;version=2.0"}, {}, None, 406),
        ("POST", "collections/{c}/objects/", {"Content-Type": "application/json"}, {}, "{}", 415),
        ("POST", "collections/{c}/objects/", {"Content-Type": MEDIA}, {}, "{not json", 400),
        ("POST", "collections/{c}/objects/", {"Content-Type": MEDIA}, {}, '{"a": 1}', 422),
        ("GET", "collections/{c}/objects/", {}, {"limit": "-1"}, None, 400),
        ("GET", "collections/{c}/objects/", {}, {"added_after": "yesterday"}, None, 400),
        ("GET", "collections/{c}/objects/", {}, {"next": "bogus!"}, None, 400),
        ("GET", "collections/{c}/objects/", {}, {"match[color]": "red"}, None, 400),
        ("GET", "collections/{c}/objects/", {}, {"match[version]": "soon"}, None, 400),
        ("GET", f"collections/{uuid.uuid4()}/", {}, {}, None, 404),
        ("GET", "collections/not-a-uuid/objects/", {}, {}, None, 404),
        ("GET", "status/not-a-uuid/", {}, {}, None, 404),
        ("DELETE", "collections/{c}/", {}, {}, None, 405),
    ],
)
def test_errors_are_taxii_error_messages(
    taxii: Taxii,
    federation: Federation,
    method: str,
    path: str,
    headers: dict[str, str],
    params: dict[str, str],
    body: str | None,
    code: int,
) -> None:
    root = taxii("de")
    resp = raw(root, method, path.format(c=FED_GREEN), headers=headers, params=params, data=body)
    assert resp.status_code == code, resp.text
    assert resp.headers["Content-Type"] == MEDIA
    error = resp.json()
    assert error["http_status"] == str(code) and error["title"]


def test_401_403_and_413(
    taxii: Taxii, federation: Federation, live_url: str, settings: Any
) -> None:
    base = f"{live_url}/taxii2/"
    for url in (base, base + "vcisc/collections/"):
        resp = requests.get(url, headers={"Accept": MEDIA}, timeout=10)
        assert resp.status_code == 401 and resp.json()["http_status"] == "401"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    bad = requests.get(
        base, headers={"Accept": MEDIA, "Authorization": "Bearer vcisc_nope"}, timeout=10
    )
    assert bad.status_code == 401
    admin = raw(
        taxii("admin"),
        "POST",
        f"collections/{FED_GREEN}/objects/",
        data=json.dumps(envelope(indicator(1))),
        headers={"Content-Type": MEDIA},
    )
    assert admin.status_code == 403 and admin.json()["http_status"] == "403"
    settings.VCISC_TAXII_MAX_CONTENT_LENGTH = 200
    big = raw(
        taxii("de"),
        "POST",
        f"collections/{FED_GREEN}/objects/",
        data=json.dumps(envelope(indicator(1))),
        headers={"Content-Type": MEDIA},
    )
    assert big.status_code == 413 and big.json()["http_status"] == "413"
    assert taxii("de").max_content_length == 200

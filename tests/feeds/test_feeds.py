"""Federation feeds (issue 5): MISP feeds imported and pulled, matched with engagements and told
to exactly those who may know; the MISP-format feed VCISC serves, read by PyMISP."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import LazySettings
from django.test import Client
from pymisp import MISPEvent, MISPOrganisation

from tests.conftest import Federation, accepted_engagement
from tests.integration.test_cli import run
from vcisc.audit.models import AuditRecord
from vcisc.feeds.models import Feed, FeedIndicator, FeedMatch
from vcisc.sharing.misp.importer import import_feed
from vcisc.tlp import Tlp

pytestmark = pytest.mark.django_db


def misp_event(info: str, attributes: list[tuple[str, str]], tlp: str = "tlp:green") -> MISPEvent:
    """An event as a MISP instance publishes it in a feed (PyMISP, the real client library)."""
    event = MISPEvent()
    event.uuid = str(uuid.uuid4())
    event.info = info
    org = MISPOrganisation()
    org.name, org.uuid = "CIRCL", str(uuid.uuid4())
    event.Orgc = org
    event.add_tag(tlp)
    for kind, value in attributes:
        event.add_attribute(kind, value, category="Network activity", to_ids=True)
    return event


def feed_files(*events: MISPEvent) -> tuple[dict[str, Any], dict[str, Any]]:
    """``manifest.json`` and the event files, as PyMISP writes a feed."""
    manifest: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for event in events:
        manifest.update(event.manifest)
        files[event.uuid] = event.to_feed(with_meta=False)
    return manifest, files


def _feed(fed: Federation, name: str = "OSINT", tlp: str = "green", **extra: Any) -> str:
    resp = fed.api("coordinator").post("/feeds", {"name": name, "tlp": tlp, **extra})
    assert resp.status_code == 201, resp.content
    feed_id: str = resp.json()["id"]
    return feed_id


def _upload(fed: Federation, feed: str, *events: MISPEvent, on_error: str = "reject") -> Any:
    manifest, files = feed_files(*events)
    return fed.api("coordinator").post(
        f"/feeds/{feed}/import", {"manifest": manifest, "events": files, "on_error": on_error}
    )


def _told(fed: Federation, kind: str) -> set[str]:
    from vcisc.notify.models import InAppNotification

    names = {o.pk: key for key, o in fed.orgs.items()}
    return {names[n.organisation_id] for n in InAppNotification.objects.filter(kind=kind)}


def test_coordinators_manage_feeds_members_read_them_observers_do_not(
    federation: Federation,
) -> None:
    fed = federation
    body = {"name": "OSINT", "tlp": "green", "provider": "CIRCL"}
    assert fed.api("ee").post("/feeds", body).status_code == 403
    feed = _feed(fed, provider="CIRCL")
    assert AuditRecord.objects.filter(action="feed.create").count() == 1
    for who in ("ee", "de_analyst", "ua", "admin"):
        resp = fed.api(who).get("/feeds")
        assert resp.status_code == 200 and [f["name"] for f in resp.json()] == ["OSINT"]
    assert fed.api("am").get("/feeds").status_code == 403
    assert fed.api("am").get(f"/feeds/{feed}").status_code == 404
    assert (
        fed.api("ee").post(f"/feeds/{feed}/import", {"manifest": {}, "events": {}}).status_code
        == 403
    )
    resp = fed.api("coordinator").patch(f"/feeds/{feed}", {"enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Amber feed", "tlp": "amber"}, "tlp"),
        ({"name": "OSINT", "tlp": "green"}, "name"),  # taken
        ({"name": "Internal", "tlp": "green", "url": "http://10.0.0.1/feed"}, "url"),
        ({"name": "Plain", "tlp": "green", "url": "ftp://feeds.example/x"}, "url"),
        ({"name": "Extra", "tlp": "green", "colour": "blue"}, "colour"),
    ],
)
def test_a_bad_feed_is_refused_with_the_reason(
    federation: Federation, body: dict[str, Any], field: str
) -> None:
    _feed(federation)
    resp = federation.api("coordinator").post("/feeds", body)
    assert resp.status_code == 422, resp.content
    assert field in json.dumps(resp.json())
    assert Feed.objects.count() == 1


def test_an_uploaded_feed_matches_engagements_and_tells_who_may_know(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    resp = fed.api("de").post(f"/engagements/{eng}/indicators", {"value": "203.0.113.7"})
    assert resp.status_code == 201, resp.content
    feed = _feed(fed)
    event = misp_event(
        "Campaign X", [("ip-dst", "203.0.113.7"), ("domain", "C2.Evil.example"), ("ip-dst", "x")]
    )
    # One invalid attribute: the whole feed is refused, nothing changes...
    resp = _upload(fed, feed, event)
    assert resp.status_code == 422, resp.content
    assert "attribute" in resp.json()["detail"] and FeedIndicator.objects.count() == 0
    # ...or it is skipped and reported, the caller's choice.
    resp = _upload(fed, feed, event, on_error="skip")
    assert resp.status_code == 200, resp.content
    out = resp.json()
    assert (out["events"], out["indicators"], out["matches"]) == (1, 2, 1)
    assert len(out["report"]["skipped"]) == 1
    listed = fed.api("ua").get(f"/feeds/{feed}/indicators").json()
    assert sorted(i["value"] for i in listed["items"]) == ["203.0.113.7", "c2.evil.example"]
    # The match is shown to those who read the engagement's indicator, and told to its desks.
    for who in ("ee", "de", "de_analyst"):
        matches = fed.api(who).get(f"/engagements/{eng}/feed-matches").json()
        assert [(m["value"], m["feed"]) for m in matches] == [("203.0.113.7", "OSINT")]
        assert matches[0]["event_info"] == "Campaign X"
    assert fed.api("coordinator").get(f"/engagements/{eng}/feed-matches").json() == []
    assert fed.api("fr").get(f"/engagements/{eng}/feed-matches").status_code == 404
    assert _told(fed, "indicator.in_feed") == {"ee", "de"}
    assert AuditRecord.objects.filter(action="feed.import").count() == 1
    # An indicator added later is matched on its way in; a pull that no longer lists a value
    # drops it from the feed but keeps the match on record.
    resp = fed.api("ee").post(f"/engagements/{eng}/indicators", {"value": "c2.evil.example"})
    assert resp.status_code == 201
    assert FeedMatch.objects.count() == 2
    resp = _upload(fed, feed, misp_event("Campaign Y", [("domain", "other.example")]))
    assert resp.status_code == 200 and resp.json()["indicators"] == 1
    assert FeedIndicator.objects.count() == 1 and FeedMatch.objects.count() == 2


def test_an_event_stricter_than_its_feed_is_never_imported(federation: Federation) -> None:
    """A feed is read federation-wide: an AMBER event in a GREEN feed would widen its TLP."""
    fed = federation
    feed = _feed(fed)
    amber = misp_event("Restricted", [("domain", "amber.example")], tlp="tlp:amber")
    green = misp_event("Open", [("domain", "green.example")])
    resp = _upload(fed, feed, amber, green)
    assert resp.status_code == 422 and "stricter than the feed" in resp.json()["detail"]
    assert FeedIndicator.objects.count() == 0
    resp = _upload(fed, feed, amber, green, on_error="skip")
    assert resp.status_code == 200, resp.content
    assert list(FeedIndicator.objects.values_list("value", flat=True)) == ["green.example"]


def test_a_red_indicator_matched_in_a_feed_reaches_named_members_only(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "red")
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators", {"value": "red.evil.example", "tlp": "red"}
    )
    assert resp.status_code == 201, resp.content
    feed = _feed(fed)
    assert (
        _upload(fed, feed, misp_event("E", [("domain", "red.evil.example")])).json()["matches"] == 1
    )
    assert len(fed.api("de").get(f"/engagements/{eng}/feed-matches").json()) == 1
    assert fed.api("de_analyst").get(f"/engagements/{eng}/feed-matches").json() == []
    assert _told(fed, "indicator.in_feed") == set()


# --- pulling over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static web server on 127.0.0.1 holding a feed folder, as a MISP feed is hosted."""
    folder = tmp_path / "feed"
    folder.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed", folder
    server.shutdown()
    server.server_close()


def _write_feed(folder: Path, *events: MISPEvent) -> None:
    manifest, files = feed_files(*events)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for event_uuid, content in files.items():
        (folder / f"{event_uuid}.json").write_text(json.dumps(content))


def test_a_feed_is_pulled_from_its_url(
    federation: Federation, feed_server: tuple[str, Path], settings: LazySettings
) -> None:
    fed = federation
    url, folder = feed_server
    # Without the allow-list the server's own address is refused, as for webhooks.
    resp = fed.api("coordinator").post("/feeds", {"name": "Local", "tlp": "clear", "url": url})
    assert resp.status_code == 422 and "not a public address" in resp.json()["detail"]
    settings.CONFIG = settings.CONFIG.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.1/32"]}
    )
    feed = _feed(fed, "Local", "clear", url=url)
    resp = fed.api("coordinator").post(f"/feeds/{feed}/pull", {})
    assert resp.status_code == 422 and "manifest.json is not there" in resp.json()["detail"]
    events = [
        misp_event(f"Event {n}", [("ip-dst", f"198.51.100.{n}")], "tlp:clear") for n in (1, 2)
    ]
    _write_feed(folder, *events)
    resp = fed.api("coordinator").post(f"/feeds/{feed}/pull", {})
    assert resp.status_code == 200, resp.content
    assert (resp.json()["events"], resp.json()["indicators"]) == (2, 2)
    assert resp.json()["feed"]["pulled_at"] is not None
    # An event the manifest lists but the server lacks: reported and skipped by default.
    (folder / f"{events[1].uuid}.json").unlink()
    resp = fed.api("coordinator").post(f"/feeds/{feed}/pull", {})
    assert resp.status_code == 200 and resp.json()["indicators"] == 1
    assert "missing from the feed" in json.dumps(resp.json()["report"]["skipped"])
    resp = fed.api("coordinator").post(f"/feeds/{feed}/pull", {"on_error": "reject"})
    assert resp.status_code == 422 and FeedIndicator.objects.count() == 1


def test_the_cli_adds_imports_and_lists_feeds(
    federation: Federation, capsys: Any, tmp_path: Path
) -> None:
    coordinator = federation.users["coordinator"].email
    code, out, err = run(
        capsys, "feed", "add", "--as", coordinator, "--name", "Files", "--tlp", "green"
    )
    assert code == 0, err
    _write_feed(tmp_path, misp_event("From disk", [("domain", "disk.example")]))
    code, out, err = run(
        capsys, "feed", "import", "Files", "--as", coordinator, "--dir", str(tmp_path), "--quiet"
    )
    assert code == 0, err
    assert "1 event(s), 1 indicator(s)" in out
    code, out, _ = run(capsys, "feed", "list", "--as", federation.users["ee"].email)
    assert code == 0 and "Files" in out and "1 indicators" in out.replace("       ", "")
    (tmp_path / "manifest.json").write_text("{not json")
    code, _, err = run(
        capsys, "feed", "import", "Files", "--as", coordinator, "--dir", str(tmp_path), "--quiet"
    )
    assert code == 2 and "not valid JSON" in err
    assert FeedIndicator.objects.count() == 1


# --- the MISP feed VCISC serves -------------------------------------------------------------------


def _served(fed: Federation, who: str, name: str) -> Any:
    token = fed.api(who).token
    return Client().get(f"/feeds/misp/{name}", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_served_misp_feed_holds_what_the_caller_may_read(federation: Federation) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    for value, tlp in (("feed.evil.example", "amber"), ("198.51.100.5", "green")):
        resp = fed.api("de").post(f"/engagements/{eng}/indicators", {"value": value, "tlp": tlp})
        assert resp.status_code == 201
    red = accepted_engagement(fed, "red")
    fed.api("de").post(f"/engagements/{red}/indicators", {"value": "red.example", "tlp": "red"})
    manifest = _served(fed, "ee", "manifest.json")
    assert manifest.status_code == 200, manifest.content
    listed = manifest.json()
    assert len(listed) == 1  # the RED engagement cannot be said in MISP: not in the feed
    (event_uuid,) = listed
    event = _served(fed, "ee", f"{event_uuid}.json")
    assert event.status_code == 200
    loaded = MISPEvent()
    loaded.load(event.json())  # PyMISP reads it as a MISP instance's feed fetcher would
    assert sorted(a.value for a in loaded.attributes) == ["198.51.100.5", "feed.evil.example"]
    assert {t.name for t in loaded.tags} == {"tlp:amber"}
    hashes = _served(fed, "ee", "hashes.csv").content.decode()
    assert hashes.count(event_uuid) == 2
    # The feed read back through our own feed importer keeps every value and its TLP.
    back = import_feed(
        listed,
        lambda u: _served(fed, "ee", f"{u}.json").content,
        default_tlp=Tlp.GREEN,
    )
    assert not back.report.rejected
    assert sorted((i.observable.value, i.tlp.value) for i in back.events[0].indicators) == [
        ("198.51.100.5", "green"),
        ("feed.evil.example", "amber"),
    ]
    # Others: an empty feed, and the event is missing for them, worded as for any missing one.
    for who in ("fr", "us", "am", "coordinator"):
        assert _served(fed, who, "manifest.json").json() == {}
        missing = _served(fed, who, f"{event_uuid}.json")
        assert missing.status_code == 404 and event_uuid in missing.json()["detail"]
    assert Client().get("/feeds/misp/manifest.json").status_code == 401
    resp = Client().get("/feeds/misp/manifest.json", HTTP_AUTHORIZATION="Bearer vcisc_nope")
    assert resp.status_code == 401
    assert _served(fed, "ee", "not-a-uuid.json").status_code == 404


# --- the federation TAXII collections are feeds too -----------------------------------------------


def _post(fed: Federation, who: str, scope: str, *objects: dict[str, Any]) -> Any:
    from vcisc.sharing.taxii.scopes import get_collection
    from vcisc.sharing.taxii.store import add_objects

    user = fed.users[who]
    body = json.dumps({"objects": list(objects)}).encode()
    return add_objects(user, get_collection(user, scope), body, max_bytes=10**6)


def _stix_indicator(value: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-30T10:00:00.000Z",
        "modified": "2026-11-30T10:00:00.000Z",
        "name": f"seen: {value}",
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-30T10:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }


def test_what_members_post_to_a_federation_collection_is_matched_with_engagements(
    federation: Federation,
) -> None:
    from vcisc.sharing.taxii.media import Filters
    from vcisc.sharing.taxii.scopes import FEDERATION_SCOPES, get_collection
    from vcisc.sharing.taxii.store import delete_object

    fed = federation
    green = next(str(k) for k, v in FEDERATION_SCOPES.items() if v is Tlp.GREEN)
    eng = accepted_engagement(fed, "amber")
    fed.api("de").post(f"/engagements/{eng}/indicators", {"value": "posted.evil.example"})
    first = _stix_indicator("posted.evil.example")
    status = _post(fed, "us", green, first, _stix_indicator("unrelated.example"))
    assert status.success_count == 2
    matches = fed.api("ee").get(f"/engagements/{eng}/feed-matches").json()
    assert [(m["value"], m["event_info"]) for m in matches] == [
        ("posted.evil.example", "seen: posted.evil.example")
    ]
    (feed,) = fed.api("ua").get("/feeds").json()
    assert feed["name"] == "Federation TAXII collection (TLP:GREEN)" and feed["indicators"] == 2
    # Its content comes from TAXII only: neither pulled nor uploaded.
    resp = fed.api("coordinator").post(
        f"/feeds/{feed['id']}/import", {"manifest": {}, "events": {}}
    )
    assert resp.status_code == 422 and "over TAXII" in resp.json()["detail"]
    # A value an engagement gets later is matched on its way in, too.
    resp = fed.api("ee").post(f"/engagements/{eng}/indicators", {"value": "unrelated.example"})
    assert resp.status_code == 201 and FeedMatch.objects.count() == 2
    # Deleted from the collection, the value leaves the feed; the matches stay on record.
    user = fed.users["us"]
    delete_object(user, get_collection(user, green), first["id"], Filters(versions=("all",)))
    assert list(FeedIndicator.objects.values_list("value", flat=True)) == ["unrelated.example"]
    assert FeedMatch.objects.count() == 2


def test_a_large_feed_is_matched_in_chunks(federation: Federation) -> None:
    """More values than one look-up statement carries (5,000): every match is found once."""
    fed = federation
    eng = accepted_engagement(fed, "green")
    values = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(6_001)]
    csv = "value\n" + "\n".join(values) + "\n"
    resp = fed.api("de").post(
        f"/engagements/{eng}/indicators/import", {"format": "csv", "content": csv}
    )
    assert resp.status_code == 201 and resp.json()["created"] == 6_001
    feed = _feed(fed)
    event = {
        "Event": {
            "uuid": str(uuid.uuid4()),
            "info": "Many addresses",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [
                {"type": "ip-dst", "category": "Network activity", "value": v, "to_ids": True}
                for v in values
            ],
        }
    }
    manifest = {event["Event"]["uuid"]: {"info": "Many addresses", "timestamp": 1}}
    body = {"manifest": manifest, "events": {event["Event"]["uuid"]: event}}
    resp = fed.api("coordinator").post(f"/feeds/{feed}/import", body)
    assert resp.status_code == 200, resp.content[:500]
    assert (resp.json()["indicators"], resp.json()["matches"]) == (6_001, 6_001)
    resp = fed.api("coordinator").post(f"/feeds/{feed}/import", body)  # again: nothing new
    assert resp.json()["matches"] == 0 and FeedMatch.objects.count() == 6_001


def test_feeds_are_pulled_on_their_schedule(
    federation: Federation, feed_server: tuple[str, Path], settings: LazySettings, capsys: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from vcisc.feeds.services import due_feeds

    fed = federation
    url, folder = feed_server
    settings.CONFIG = settings.CONFIG.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.1/32"]}
    )
    _write_feed(folder, misp_event("Scheduled", [("domain", "scheduled.example")]))
    resp = fed.api("coordinator").post(
        "/feeds", {"name": "Hourly", "tlp": "green", "url": url, "pull_every_minutes": 60}
    )
    assert resp.status_code == 201 and resp.json()["pull_every_minutes"] == 60
    bad = fed.api("coordinator").post(
        "/feeds", {"name": "No URL", "tlp": "green", "pull_every_minutes": 60}
    )
    assert bad.status_code == 422 and "URL" in bad.json()["detail"]
    by_hand = _feed(fed, "By hand", url=url)
    assert [f.name for f in due_feeds()] == ["Hourly"]  # never pulled: due
    coordinator = fed.users["coordinator"].email
    code, out, err = run(capsys, "feed", "pull", "--due", "--as", coordinator, "--quiet")
    assert code == 0, err
    assert "feed Hourly: 1 event(s), 1 indicator(s)" in out and "By hand" not in out
    assert due_feeds() == []
    assert [f.name for f in due_feeds(timezone.now() + timedelta(minutes=61))] == ["Hourly"]
    code, out, _ = run(capsys, "feed", "pull", "--due", "--as", coordinator, "--quiet")
    assert code == 0 and "no feed is due" in out
    resp = fed.api("coordinator").patch(f"/feeds/{by_hand}", {"pull_every_minutes": 5})
    assert resp.status_code == 200 and resp.json()["enabled"] is True
    assert (
        fed.api("coordinator").patch(f"/feeds/{by_hand}", {"pull_every_minutes": 1}).status_code
        == 422
    )


def test_feeds_match_by_cidr_containment_both_ways(federation: Federation) -> None:
    """A feed's network holds an engagement's address, an engagement's network holds a feed's
    address: both are matches (``within``), on the feed's import and on the indicator's way
    in; a network of the other family or a disjoint one is not."""
    fed = federation
    eng = accepted_engagement(fed, "amber")
    api = fed.api("de")
    for value in ("198.51.100.23", "192.0.2.0/24", "2001:db8::1"):
        assert api.post(f"/engagements/{eng}/indicators", {"value": value}).status_code == 201
    feed = _feed(fed)
    event = misp_event(
        "Ranges",
        [
            ("ip-dst", "198.51.100.0/24"),  # holds the engagement's address
            ("ip-dst", "192.0.2.77"),  # inside the engagement's network
            ("ip-dst", "203.0.113.0/24"),  # holds nothing of the engagement
            ("ip-dst", "::ffff:0:0/96"),  # IPv6: holds no IPv4 address of the engagement
        ],
    )
    resp = _upload(fed, feed, event)
    assert resp.status_code == 200, resp.content
    assert resp.json()["matches"] == 2
    found = fed.api("de_analyst").get(f"/engagements/{eng}/feed-matches").json()
    assert sorted((m["value"], m["relation"], m["feed_value"]) for m in found) == [
        ("192.0.2.0/24", "within", "192.0.2.77"),
        ("198.51.100.23", "within", "198.51.100.0/24"),
    ]
    # On the way in: an address and a network inside feed networks, a network holding a feed
    # address.
    for value in ("203.0.113.9", "198.51.100.0/25", "192.0.2.64/26"):
        assert api.post(f"/engagements/{eng}/indicators", {"value": value}).status_code == 201
    assert api.post(f"/engagements/{eng}/indicators", {"value": "192.0.2.0/28"}).status_code == 201
    found = fed.api("de").get(f"/engagements/{eng}/feed-matches").json()
    pairs = sorted((m["value"], m["feed_value"]) for m in found)
    assert ("203.0.113.9", "203.0.113.0/24") in pairs
    assert ("198.51.100.0/25", "198.51.100.0/24") in pairs
    assert ("192.0.2.64/26", "192.0.2.77") in pairs
    assert not any(v == "192.0.2.0/28" for v, _ in pairs)  # 192.0.2.77 is not in .0/28
    assert len(pairs) == 5 and _told(fed, "indicator.in_feed") == {"ee", "de"}
    # The same value and a network holding it: one match for the indicator and feed.
    assert api.post(f"/engagements/{eng}/indicators", {"value": "192.0.2.77"}).status_code == 201
    same = fed.api("de").get(f"/engagements/{eng}/feed-matches").json()
    assert [m["relation"] for m in same if m["value"] == "192.0.2.77"] == ["same"]

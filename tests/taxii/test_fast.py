"""TAXII's fast reads (vcisc.sharing.taxii.fast) answer exactly what Django's path answers, and
nothing once anything they decided on has changed: every read below is made both ways, on the
test's own connection, and the answers compared byte for byte."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.utils import timezone

from tests.conftest import Federation, accepted_engagement
from tests.taxii.test_taxii import FED_GREEN
from vcisc.engagements.models import EngagementMember, Participant
from vcisc.federation import services as fs
from vcisc.federation.models import ApiToken
from vcisc.sharing.taxii import fast

pytestmark = pytest.mark.django_db


def path_of(collection: str) -> str:
    return f"/taxii2/vcisc/collections/{collection}/objects/"


def django_read(fed: Federation, who: str, collection: str, query: str = "", **extra: Any) -> Any:
    url = path_of(collection) + (f"?{query}" if query else "")
    token = fed.apis[who].token
    response: HttpResponse = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    return response


def fast_read(
    fed: Federation, who: str, collection: str, query: str = "", **kw: Any
) -> fast.Answer | None:
    headers = {"host": "testserver", "authorization": f"Bearer {fed.apis[who].token}"}
    return fast.answer(path_of(collection), query, headers, **kw)


def assert_same(fed: Federation, who: str, collection: str, query: str = "") -> bytes:
    """Django's answer, then the fast path's twice (deciding, then from its cache): the same
    200 with the same bytes and headers, or no fast answer where Django's is not a 200."""
    expected = django_read(fed, who, collection, query)
    for attempt in ("decided", "cached"):
        got = fast_read(fed, who, collection, query)
        if expected.status_code != 200:
            assert got is None, (who, query, attempt, expected.status_code)
            continue
        assert got is not None, (who, query, attempt)
        assert got.body == expected.content, (who, query, attempt)
        assert got.headers == dict(expected.headers), (who, query, attempt)
    return bytes(expected.content)


@pytest.fixture
def engagement(federation: Federation) -> str:
    """An AMBER engagement with one AMBER and one TLP:RED indicator (EE's liaison is a named
    member; EE's analyst is not)."""
    eng = accepted_engagement(federation, "amber")
    api = federation.api("ee")
    for value, tlp in (("evil.example", "amber"), ("198.51.100.77", "red")):
        body = {"value": value, "tlp": tlp}
        assert api.post(f"/engagements/{eng}/indicators", body).status_code == 201
    return eng


def test_every_read_answers_as_djangos_path(federation: Federation, engagement: str) -> None:
    first = django_read(federation, "ee", engagement, "limit=1").json()
    an_id = first["objects"][0]["id"]
    queries = [
        "",
        "limit=1",
        "limit=5",  # small pages: several rows, in order, in the event loop's one statement
        f"next={first['next']}&limit=1",
        "match[type]=indicator",
        "match[type]=indicator&limit=50",
        f"match[id]={an_id}",
        f"match[id]={an_id},indicator--00000000-0000-4000-8000-000000000000",
        "match[version]=all&match[spec_version]=2.1",
        "match[version]=first,last&added_after=2026-01-01T00:00:00Z",
        "limit=nope",  # Django's 400
        "match[color]=red",  # Django's 400
    ]
    hits = fast.stats()["hits"]
    # The member, a non-member of the same organisation, the helper, a nation routed nothing,
    # the secretariat, an observer: 200s with and without TLP:RED, 404s.
    for who in ("ee", "ee_analyst", "de", "fr", "coordinator", "am"):
        for query in queries:
            assert_same(federation, who, engagement, query)
    assert fast.stats()["hits"] > hits
    red = b"198.51.100.77"
    assert red in assert_same(federation, "ee", engagement, "match[type]=indicator")
    assert red not in assert_same(federation, "ee_analyst", engagement, "match[type]=indicator")
    assert_same(federation, "de", FED_GREEN)
    assert_same(federation, "am", FED_GREEN)  # an observer: 404


def test_any_change_is_decided_anew(federation: Federation, engagement: str) -> None:
    analyst = federation.users["ee_analyst"]
    red = b"198.51.100.77"
    assert red not in assert_same(federation, "ee_analyst", engagement)
    # Named a member: TLP:RED reaches them on the next read; no longer a member: it does not.
    added = federation.api("ee").post(f"/engagements/{engagement}/members", {"user_id": analyst.pk})
    assert added.status_code == 201, added.content
    assert red in assert_same(federation, "ee_analyst", engagement)
    EngagementMember.objects.filter(engagement_id=engagement, user=analyst).delete()
    assert red not in assert_same(federation, "ee_analyst", engagement)
    # A new item is materialised and read.
    api = federation.api("de")
    assert api.post(f"/engagements/{engagement}/indicators", {"value": "c2.example"}).status_code
    assert b"c2.example" in assert_same(federation, "ee_analyst", engagement)
    # A revoked token reads nothing (Django's path: 401).
    token = ApiToken.objects.get(user=analyst)
    fs.revoke_token(None, token)
    assert django_read(federation, "ee_analyst", engagement).status_code == 401
    assert fast_read(federation, "ee_analyst", engagement) is None


def test_a_deactivated_account_and_a_removed_participant_read_nothing(
    federation: Federation, engagement: str
) -> None:
    assert_same(federation, "de", engagement)
    assert_same(federation, "ee_analyst", engagement)
    fs.deactivate(None, federation.users["ee_analyst"])
    assert fast_read(federation, "ee_analyst", engagement) is None
    assert django_read(federation, "ee_analyst", engagement).status_code == 401
    # DE's participation ends: its participant row goes (the fast path decides on whatever
    # the database holds, however the change was made).
    Participant.objects.filter(
        engagement_id=engagement, organisation=federation.orgs["de"]
    ).delete()
    assert django_read(federation, "de", engagement).status_code == 404
    assert fast_read(federation, "de", engagement) is None


def test_time_alone_expires_a_token_and_renews_its_use_stamp(
    federation: Federation, engagement: str
) -> None:
    assert_same(federation, "de", engagement)
    token = ApiToken.objects.get(user=federation.users["de"])
    assert (
        fast_read(federation, "de", engagement, now=token.expires_at + timedelta(seconds=1)) is None
    )
    decided = fast.stats()["decided"]
    later = timezone.now() + timedelta(minutes=2)
    assert fast_read(federation, "de", engagement, now=later) is not None
    assert fast.stats()["decided"] == decided + 1  # checked anew, which stamps it
    token.refresh_from_db()
    assert token.last_used_at == later


@override_settings(VCISC_API_RATE_PER_TOKEN="3/m")
def test_the_rate_limit_counts_both_paths(federation: Federation, engagement: str) -> None:
    for _ in range(3):
        assert fast_read(federation, "de", engagement) is not None
    assert fast_read(federation, "de", engagement) is None  # the 4th call of the minute
    assert django_read(federation, "de", engagement).status_code == 429


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=3600,
)
def test_behind_a_tls_proxy_the_headers_are_djangos(
    federation: Federation, engagement: str
) -> None:
    https = django_read(federation, "de", engagement, HTTP_X_FORWARDED_PROTO="https")
    assert https.status_code == 200 and "Strict-Transport-Security" in https.headers
    got = fast_read(federation, "de", engagement, secure=True)
    assert got is not None and got.headers == dict(https.headers) and got.body == https.content
    # Plain HTTP is redirected by Django; the fast path leaves it to Django.
    assert django_read(federation, "de", engagement).status_code == 301
    assert fast_read(federation, "de", engagement) is None


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", path_of("x"), [(b"authorization", b"Bearer t")]),
        ("GET", "/taxii2/vcisc/collections/x/manifest/", [(b"authorization", b"Bearer t")]),
        ("GET", path_of("x"), []),  # no bearer token: a console session, Django decides
        ("GET", "/taxii2/other/collections/x/objects/", [(b"authorization", b"Bearer t")]),
        ("GET", path_of("x"), [(b"authorization", b"Basic dTpw")]),
    ],
)
def test_the_asgi_layer_hands_everything_else_to_django(
    method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    seen: list[str] = []

    async def django(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": headers,
    }
    scope["headers"] = [(b"host", b"testserver"), *headers]

    async def nothing() -> Any:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Any) -> None:
        raise AssertionError("the fast path answered")

    asyncio.run(fast.FastReads(django)(scope, nothing, ignore))
    assert seen == [path]


def test_remembered_header_checks_refuse_what_django_refuses(
    federation: Federation, engagement: str
) -> None:
    """The Host and Accept checks are remembered per value: a good value remembered never
    lets a bad one through, before or after, and a changed ALLOWED_HOSTS is seen at once."""
    token = federation.apis["ee"].token
    good = {"host": "testserver", "authorization": f"Bearer {token}"}
    path = path_of(engagement)
    for _ in range(2):  # decided, then remembered
        assert fast.answer(path, "", good) is not None
        assert fast.answer(path, "", {**good, "host": "evil.example"}) is None
        assert fast.answer(path, "", {**good, "accept": "application/json"}) is None
        assert fast.answer(path, "", {**good, "host": "x" * 300}) is None  # never remembered
    with override_settings(ALLOWED_HOSTS=["other.example"]):
        assert fast.answer(path, "", good) is None


def test_the_marker_moves_with_every_write_and_only_then(federation: Federation) -> None:
    connection.ensure_connection()

    def marker() -> tuple[Any, ...]:
        return fast._marker(connection.connection, connection.vendor)

    before = marker()
    assert marker() == before  # reads change nothing
    user = federation.users["de_analyst"]
    type(user).objects.filter(pk=user.pk).update(first_name="Renamed")  # this transaction's own
    after = marker()
    assert after != before
    assert marker() == after

"""Shared fixtures: a small federation with a user (and token) for every part of the story.

Each test gets a clean database (pytest-django rolls back after every test); :func:`shared_rows`
lets a module or class of read-only tests share rows that are expensive to write (the demo).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import Model
from django.test import Client
from django.utils import timezone

from vcisc.federation import services as fs
from vcisc.federation.models import Organisation, User

T = TypeVar("T")


def shared_rows(django_db_blocker: Any, build: Callable[[], T]) -> Iterator[T]:
    """For a module- or class-scoped fixture (``yield from shared_rows(...)``, after
    ``django_db_setup``): ``build()`` once, in a transaction that stays open while the scope's
    tests run and is rolled back when it ends. Each test's own transaction (pytest-django's, a
    savepoint here) nests inside it, so what a test writes is still undone after that test; the
    next scope starts from a clean database again. Not for ``transaction=True`` tests."""
    with django_db_blocker.unblock():
        block = transaction.atomic()
        block.__enter__()
        try:
            made = build()
        except BaseException:
            block.__exit__(*sys.exc_info())
            raise
    try:
        yield made
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            block.__exit__(None, None, None)


@dataclass
class Api:
    """A JSON client acting as one user through a real bearer token."""

    user: User
    token: str
    client: Client = field(default_factory=Client)

    def _call(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.token}", **extra}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def get(self, path: str, **extra: Any) -> Any:
        return self._call("get", path, **extra)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self._call("post", path, body if body is not None else {}, **extra)

    def patch(self, path: str, body: Any, **extra: Any) -> Any:
        return self._call("patch", path, body, **extra)


@dataclass
class Federation:
    orgs: dict[str, Organisation]
    users: dict[str, User]
    apis: dict[str, Api]

    def api(self, name: str) -> Api:
        return self.apis[name]


def _org(name: str, kind: str, nation: str | None) -> Organisation:
    org = fs.create_organisation(None, name=name, kind=kind, nation_code=nation)
    if kind != "secretariat":
        fs.create_contact(
            None,
            organisation_id=org.pk,
            name=f"{name} desk",
            email=f"desk@{name.lower().replace(' ', '-')}.example",
            languages=["en"],
            time_zone="UTC",
            on_call="24/7",
        )
    return org


def _build_federation() -> tuple[dict[str, Organisation], dict[str, User], dict[str, str]]:
    """The federation through the services: organisations, users and their tokens' text."""
    for code, name, kind, eu in [
        ("EE", "Estonia", "member", True),
        ("DE", "Germany", "member", True),
        ("FR", "France", "member", True),
        ("US", "United States", "member", False),
        ("UA", "Ukraine", "partner", False),
        ("AM", "Armenia", "observer", False),
    ]:
        fs.create_nation(None, code=code, name=name, kind=kind, eu_member=eu)
    orgs = {
        "secretariat": _org("VCISC Secretariat", "secretariat", None),
        "ee": _org("CERT-EE", "cert", "EE"),
        "de": _org("CERT-Bund", "cert", "DE"),
        "fr": _org("ANSSI", "cert", "FR"),
        "us": _org("CISA", "cert", "US"),
        "ua": _org("CERT-UA", "cert", "UA"),
        "am": _org("CERT-AM", "cert", "AM"),
        "de_police": _org("BKA Cyber", "law-enforcement", "DE"),
    }
    caps = [
        (
            "de",
            "incident-response",
            "expert",
            ["energy"],
            ["iec-60870-5-104", "modbus"],
            ["de", "en"],
        ),
        (
            "de",
            "ics-ot-expertise",
            "expert",
            ["energy/electricity"],
            ["iec-60870-5-104"],
            ["de", "en"],
        ),
        ("fr", "malware-analysis", "expert", [], [], ["fr", "en"]),
        ("fr", "incident-response", "advanced", ["energy", "health"], [], ["fr", "en"]),
        ("us", "incident-response", "expert", ["energy"], ["modbus"], ["en"]),
        ("us", "threat-intelligence", "expert", [], [], ["en"]),
        ("ua", "incident-response", "advanced", ["energy"], [], ["uk", "en"]),
        ("de_police", "law-enforcement-coordination", "advanced", [], [], ["de", "en"]),
    ]
    for key, service, depth, sectors, protocols, langs in caps:
        fs.create_capability(
            None,
            organisation_id=orgs[key].pk,
            service_type=service,
            depth=depth,
            sectors=sectors,
            ics_protocols=protocols,
            languages=langs,
            max_concurrent=3,
        )
    people = {
        "ee": ("liaison@cert.ee.example", "ee", ["liaison"]),
        "ee_analyst": ("analyst@cert.ee.example", "ee", ["analyst"]),
        "de": ("liaison@cert-bund.de.example", "de", ["liaison"]),
        "de_analyst": ("analyst@cert-bund.de.example", "de", ["analyst"]),
        "fr": ("liaison@anssi.fr.example", "fr", ["liaison"]),
        "us": ("liaison@cisa.us.example", "us", ["liaison", "analyst"]),
        "ua": ("liaison@cert.ua.example", "ua", ["liaison"]),
        "am": ("observer@cert.am.example", "am", ["observer"]),
        "coordinator": ("coordinator@secretariat.example", "secretariat", ["coordinator"]),
        "admin": ("admin@secretariat.example", "secretariat", ["admin"]),
    }
    users: dict[str, User] = {}
    tokens: dict[str, str] = {}
    for key, (email, org_key, roles) in people.items():
        user = fs.create_user(None, email=email, organisation_id=orgs[org_key].pk, roles=roles)
        _, tokens[key] = fs.create_token(None, user, days=30)
        users[key] = user
    return orgs, users, tokens


@dataclass(frozen=True)
class _Snapshot:
    """The rows :func:`_build_federation` wrote (every table), and what names them."""

    rows: list[tuple[type[Model], list[dict[str, Any]]]]
    orgs: dict[str, int]
    users: dict[str, int]
    tokens: dict[str, str]


def _take_snapshot() -> _Snapshot:
    """Build the federation through the services once, in a transaction rolled back, keeping
    every row it added (audit records and their hash chain included), field by field."""
    tables = [
        m
        for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy
    ]
    with transaction.atomic():
        present = {m: set(m._base_manager.values_list("pk", flat=True)) for m in tables}
        orgs, users, tokens = _build_federation()
        rows = []
        for model in tables:
            pk = model._meta.pk
            assert pk is not None
            fields = [f.attname for f in model._meta.concrete_fields]
            added = [
                row
                for row in model._base_manager.order_by("pk").values(*fields)
                if row[pk.attname] not in present[model]
            ]
            if added:
                rows.append((model, added))
        transaction.set_rollback(True)
    return _Snapshot(
        rows,
        {k: o.pk for k, o in orgs.items()},
        {k: u.pk for k, u in users.items()},
        tokens,
    )


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache. The federation's tokens are the same in every
    test (``federation_rows``), so the per-token API rate limit's counts, kept in the cache,
    would otherwise add up across tests and answer 429 to whichever test passes 600 calls a
    minute of one token first."""
    from django.core.cache import cache

    from vcisc.sharing.taxii import fast

    cache.clear()
    fast.reset()  # and no TAXII fast-read decisions of an earlier test


@pytest.fixture(scope="session")
def federation_rows(django_db_setup: None, django_db_blocker: Any) -> _Snapshot:
    """The federation's rows, written once per session — before any test's own settings or
    patches apply, so every test gets the same federation."""
    with django_db_blocker.unblock():
        return _take_snapshot()


@pytest.fixture
def federation(db: Any, federation_rows: _Snapshot) -> Federation:
    """The federation of the story, as :func:`_build_federation` writes it through the services.

    Writing it takes 10-20 times longer than the average test (a thousand queries: validation,
    audit chain), so it is written once per session (``federation_rows``) and its rows — the
    same rows, ids, audit records and digests — are inserted again for each test that asks (a
    few queries), as Django's ``setUpTestData`` would share them. The test's rollback removes
    them again.
    """
    snap = federation_rows
    for model, rows in snap.rows:
        model._base_manager.bulk_create([model(**copy.deepcopy(row)) for row in rows])
    by_pk = Organisation.objects.in_bulk(snap.orgs.values())
    orgs = {key: by_pk[pk] for key, pk in snap.orgs.items()}
    people = User.objects.in_bulk(snap.users.values())
    users = {key: people[pk] for key, pk in snap.users.items()}
    apis = {key: Api(user, snap.tokens[key]) for key, user in users.items()}
    return Federation(orgs, users, apis)


def rfa_body(**overrides: Any) -> dict[str, Any]:
    """A valid request for assistance: ransomware in the Estonian power grid."""
    body: dict[str, Any] = {
        "title": "Ransomware on grid operator SCADA",
        "affected_entity": "Elering AS (transmission system operator)",
        "description": "Operator workstations encrypted; RTU traffic anomalies on IEC 104.",
        "rsit_class": "malicious-code",
        "rsit_type": "infected-system",
        "sector": "energy/electricity",
        "severity": 4,
        "services_needed": ["incident-response", "ics-ot-expertise"],
        "urgency": "immediate",
        "tlp": "amber",
        "impact": "Two substations in manual operation.",
        "languages": ["et", "en"],
        "ics_protocols": ["iec-60870-5-104"],
    }
    body.update(overrides)
    return body


def offer_body(**overrides: Any) -> dict[str, Any]:
    start = timezone.now()
    body: dict[str, Any] = {
        "scope": "Remote IR team for triage of SCADA hosts",
        "team_size": 3,
        "available_from": start.isoformat(),
        "available_until": (start + timedelta(days=7)).isoformat(),
        "services": ["incident-response"],
        "remote": True,
    }
    body.update(overrides)
    return body


def accepted_engagement(fed: Federation, tlp: str, helper: str = "de") -> str:
    """A request by EE at ``tlp``, routed to ``helper``, whose offer EE accepted: its
    engagement's id."""
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid = ee.post("/requests", rfa_body(tlp=tlp, submit=True)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    resp = coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs[helper].pk]})
    assert resp.status_code == 200, resp.content
    offer = fed.api(helper).post(f"/requests/{rid}/offers", offer_body()).json()
    assert ee.post(f"/offers/{offer['id']}/accept").status_code == 200
    eng: str = ee.get(f"/requests/{rid}").json()["engagement_id"]
    return eng


def later(hours: float) -> datetime:
    return timezone.now() + timedelta(hours=hours)

"""Shared fixtures: a small federation with a user (and token) for every part of the story.

Each test gets a clean database (pytest-django rolls back after every test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from vcisc.federation import services as fs
from vcisc.federation.models import Organisation, User


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


@pytest.fixture
def federation(db: Any) -> Federation:
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
    apis: dict[str, Api] = {}
    for key, (email, org_key, roles) in people.items():
        user = fs.create_user(None, email=email, organisation_id=orgs[org_key].pk, roles=roles)
        _, token = fs.create_token(None, user, days=30)
        users[key] = user
        apis[key] = Api(user, token)
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

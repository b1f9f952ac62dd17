"""The demo federation loads through the services, completely, idempotently and audited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.apps import apps

from tests.conftest import shared_rows
from vcisc.assistance.models import Offer, RequestForAssistance, Routing
from vcisc.audit import chain
from vcisc.audit.models import AuditRecord
from vcisc.demo import NATIONS, SECRETARIAT_NAME, DemoSummary, cert_name, load_demo
from vcisc.engagements.models import AfterActionReview, Note, SituationReport, Task
from vcisc.federation.models import (
    Capability,
    Nation,
    Organisation,
    OrgKind,
    PointOfContact,
    Role,
    User,
)
from vcisc.oncall import parse_on_call, parse_timezone
from vcisc.vocabulary import ICS_PROTOCOLS, LEGAL_CONDITIONS, ServiceType, sector_choices

NOW = datetime(2025, 3, 14, 10, 30, tzinfo=UTC)
PASSWORD = "correct-horse-battery-9"
EU = {
    "AT",
    "BE",
    "BG",
    "HR",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
}

EXPECTED_STATES = {
    "draft",
    "submitted",
    "triage",
    "needs-info",
    "circulated",
    "offer-accepted",
    "active",
    "reporting",
    "closed",
    "rejected",
    "withdrawn",
    "expired",
}


def _row_counts() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


@pytest.fixture(scope="class")
def summary(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoSummary]:
    """The demo, loaded once for the read-only tests of :class:`TestTheLoadedDemo`."""
    yield from shared_rows(django_db_blocker, lambda: load_demo(now=NOW, progress=False))


@pytest.mark.django_db
class TestTheLoadedDemo:
    """What one load of the demo holds (the tests only read it)."""

    def test_directory_users_and_audit(self, summary: DemoSummary) -> None:
        kinds = Counter(Nation.objects.values_list("kind", flat=True))
        assert kinds == {"member": 32, "partner": 7, "observer": 1}
        assert set(Nation.objects.filter(eu_member=True).values_list("code", flat=True)) == EU
        assert Nation.objects.get(code="TR").name == "Türkiye"

        secretariat = Organisation.objects.get(kind=OrgKind.SECRETARIAT)
        assert secretariat.name == SECRETARIAT_NAME and secretariat.nation is None
        for spec in NATIONS:
            cert = Organisation.objects.get(name=cert_name(spec), kind=OrgKind.CERT)
            assert cert.nation is not None and cert.nation.code == spec.code
        org_kinds = set(Organisation.objects.values_list("kind", flat=True))
        assert org_kinds == set(OrgKind.values)

        assert summary.created
        assert summary.nations == 40
        assert summary.organisations == Organisation.objects.count()
        assert summary.contacts == PointOfContact.objects.count()
        assert summary.capabilities == Capability.objects.count()
        assert summary.users == User.objects.count()
        assert summary.requests == RequestForAssistance.objects.count() == 12

        for org in Organisation.objects.all():
            contacts = list(org.contacts.all())
            assert 1 <= len(contacts) <= 2, org.name
            for poc in contacts:
                assert poc.email.endswith(".example")
                assert "en" in poc.languages
                parse_on_call(poc.on_call)
                parse_timezone(poc.time_zone)
        rotas = set(PointOfContact.objects.values_list("on_call", flat=True))
        assert "24/7" in rotas and len(rotas) > 3

        sectors = set(sector_choices())
        services = set()
        for cap in Capability.objects.all():
            services.add(cap.service_type)
            assert 1 <= cap.max_concurrent <= 5
            assert set(cap.sectors) <= sectors
            assert set(cap.legal_conditions) <= set(LEGAL_CONDITIONS)
            if cap.service_type == ServiceType.ICS_OT_EXPERTISE:
                assert cap.ics_protocols and set(cap.ics_protocols) <= set(ICS_PROTOCOLS)
                assert cap.ics_vendors
        assert services == set(ServiceType.values)
        assert Capability.objects.exclude(legal_conditions=[]).exists()
        assert not Capability.objects.filter(organisation__nation__code="AM").exists()

        # Users: every role, token-only by default.
        users = list(User.objects.select_related("organisation", "organisation__nation"))
        held = {role for user in users for role in user.roles}
        assert held == set(Role.values)
        assert all(not u.has_usable_password() for u in users), "token-only by default"
        assert User.objects.get(email="admin@secretariat.example").roles == ["admin"]
        coordinators = [u for u in users if u.has_role(Role.COORDINATOR)]
        assert len(coordinators) >= 2
        assert all(u.organisation and u.organisation.is_secretariat for u in coordinators)
        control = User.objects.get(email="exercise-control@secretariat.example")
        assert control.roles == ["exercise-control"]
        observer = next(u for u in users if u.has_role(Role.OBSERVER))
        assert observer.organisation is not None and observer.organisation.nation is not None
        assert observer.organisation.nation.code == "AM"
        for cert in Organisation.objects.filter(kind=OrgKind.CERT).exclude(nation__code="AM"):
            roles = {r for u in users if u.organisation_id == cert.pk for r in u.roles}
            assert {"liaison", "analyst"} <= roles, cert.name
        assert User.objects.filter(email="liaison@cert.ee.example").exists()

        # Every change went through a service and left an intact audit chain.
        _count, _head, problem = chain.verify()
        assert problem is None
        actions = Counter(AuditRecord.objects.values_list("object_type", "action"))
        assert actions[("federation.nation", "create")] == 40
        assert actions[("federation.user", "create")] == User.objects.count()
        assert actions[("federation.capability", "create")] == Capability.objects.count()
        assert actions[("assistance.requestforassistance", "create")] == 12
        console = AuditRecord.objects.filter(object_type="federation.organisation")
        assert set(console.values_list("actor", flat=True)) == {"system"}

    def test_requests_at_every_stage(self, summary: DemoSummary) -> None:
        by_state = {r.state: r for r in RequestForAssistance.objects.all()}
        assert set(by_state) == EXPECTED_STATES
        assert {"red", "amber", "amber+strict", "green", "clear"} <= set(
            RequestForAssistance.objects.values_list("tlp", flat=True)
        )
        assert len(set(RequestForAssistance.objects.values_list("severity", flat=True))) >= 4

        circulated = by_state["circulated"]
        assert circulated.sector == "energy/electricity" and circulated.ics_protocols
        assert Routing.objects.filter(rfa=circulated).count() >= 2
        assert Offer.objects.filter(rfa=circulated, state="proposed").exists()
        assert circulated.circulated_at is not None and circulated.first_offer_at is not None

        assert Offer.objects.filter(rfa=by_state["offer-accepted"], state="accepted").exists()

        active = by_state["active"]
        assert active.tlp == "red"
        assert Task.objects.filter(engagement__rfa=active).exists()
        assert Note.objects.filter(engagement__rfa=active).exists()
        assert SituationReport.objects.filter(engagement__rfa=active).exists()
        assert Offer.objects.filter(rfa=active, state="active").count() == 2

        closed = by_state["closed"]
        assert AfterActionReview.objects.filter(engagement__rfa=closed).exists()
        assert closed.closed_at is not None and closed.engagement.closed_at is not None
        assert Offer.objects.filter(rfa=closed, state="completed").exists()
        assert Offer.objects.filter(rfa=by_state["withdrawn"], state="declined").exists()

        # Back-dated: every request happened before the demo's "now", and deadlines were derived.
        for rfa in RequestForAssistance.objects.all():
            assert rfa.created_at < NOW
            if rfa.state != "draft":
                assert rfa.submitted_at is not None and rfa.triage_due is not None
        first, last = by_state["closed"].submitted_at, by_state["submitted"].submitted_at
        assert first is not None and last is not None and first < last


@pytest.mark.django_db
def test_second_run_changes_nothing(settings: Any) -> None:
    # A fast hasher keeps the test quick; the production hasher is Argon2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    first = load_demo(now=NOW, progress=False, password=PASSWORD)
    assert first.created
    for email in (
        "admin@secretariat.example",
        "coordinator@secretariat.example",
        "liaison@cert.ee.example",
        "observer@cert.am.example",
    ):
        assert User.objects.get(email=email).check_password(PASSWORD)
    before = _row_counts()
    head_before = chain.verify()[1]

    again = load_demo(progress=False, password=PASSWORD)  # another "now" must not matter either

    assert not again.created
    assert (
        again.nations,
        again.organisations,
        again.contacts,
        again.capabilities,
        again.users,
        again.requests,
    ) == (
        first.nations,
        first.organisations,
        first.contacts,
        first.capabilities,
        first.users,
        first.requests,
    )
    assert _row_counts() == before  # every table, the audit trail and the outbox included
    count, head, problem = chain.verify()
    assert problem is None
    assert head == head_before and count == AuditRecord.objects.count()


@pytest.mark.django_db
def test_weak_password_refused_before_any_change() -> None:
    from vcisc.errors import Invalid

    with pytest.raises(Invalid):
        load_demo(now=NOW, progress=False, password="short")
    assert not Nation.objects.exists() and not AuditRecord.objects.exists()

"""The scoping rules agree with themselves: the database filter (visible_requests) and its
Python mirror (Viewer) give the same answer for every user and every request of the demo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import shared_rows
from vcisc import authz
from vcisc.assistance.models import RequestForAssistance
from vcisc.demo import DemoSummary, load_demo
from vcisc.federation.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoSummary]:
    """The demo federation, loaded once for these read-only tests (a few seconds each time)."""
    yield from shared_rows(django_db_blocker, lambda: load_demo(progress=False))


def test_database_filter_and_python_mirror_agree(demo: DemoSummary) -> None:
    requests = list(RequestForAssistance.objects.all())
    assert len(requests) >= 10
    seen_by_someone: set[int] = set()
    for user in User.objects.select_related("organisation__nation"):
        in_db = set(authz.visible_requests(user).values_list("pk", flat=True))
        viewer = authz.Viewer.of(user)
        in_python = {r.pk for r in requests if viewer.sees(r)}
        assert in_db == in_python, user.email
        for rfa in requests:
            # Loading the viewer for one request answers as loading it for all.
            assert authz.rfa_access(user, rfa) == viewer.access(rfa), (user.email, rfa.reference)
        seen_by_someone |= in_db
    assert seen_by_someone == {r.pk for r in requests}


def test_operators_and_observers_see_no_request(demo: DemoSummary) -> None:
    for email in ("admin@secretariat.example", "observer@cert.am.example"):
        user = User.objects.get(email=email)
        assert not authz.visible_requests(user).exists()


def test_offers_are_seen_by_requester_secretariat_and_the_offerer_only(demo: DemoSummary) -> None:
    from vcisc.assistance.models import Offer

    offers = list(Offer.objects.select_related("rfa"))
    assert offers
    for user in User.objects.select_related("organisation__nation"):
        viewer = authz.Viewer.of(user)
        seen = set(authz.visible_offers(user).values_list("pk", flat=True))
        org_id = user.organisation_id
        expected = {
            o.pk
            for o in offers
            if viewer.sees(o.rfa)
            and (viewer.coordinator or o.rfa.requester_id == org_id or o.organisation_id == org_id)
        }
        assert seen == expected, user.email

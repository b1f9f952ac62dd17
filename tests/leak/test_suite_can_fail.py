"""The leak suite can fail (issue 4, part 2): with a leak put into the application on purpose,
its checker reports it. Each test breaks one rule — the TLP filter, the participation filter,
one organisation too many, a log line, a notification — and asserts the report names the leak.

The scenario is fixed (one plan, built through the services) and the probes exhaustive for the
users concerned, so the tests do not depend on luck; the last test runs the random hunt itself,
as ``make test`` does, against a broken scoping function and expects it to fail.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Q, QuerySet
from hypothesis import HealthCheck, Phase, given, settings

from tests.leak.build import (
    ItemPlan,
    OfferPlan,
    OrgPlan,
    Plan,
    PostPlan,
    RfaPlan,
    SharePlan,
    UserPlan,
    build,
    plans,
)
from tests.leak.checker import Checker
from tests.leak.conftest import LogCapture
from tests.leak.hunt import hunt
from tests.leak.routes import Route, discover
from tests.leak.world import Kind, View, World
from vcisc import authz
from vcisc.assistance.models import RequestForAssistance
from vcisc.federation.models import Organisation, User

pytestmark = pytest.mark.django_db

ALL = (True,) * 8
LIAISON, ANALYST = UserPlan(("liaison",), True), UserPlan(("analyst",), True)

#: Org 0 asks for help twice (a TLP:RED request engaged with org 1, org 2 declined; an AMBER one
#: circulated to org 1); org 3 is involved in nothing. Everyone has a liaison and an analyst.
PLAN = Plan(
    nations=("member", "member", "partner"),
    orgs=(
        OrgPlan(0, "cert", (LIAISON, ANALYST), True),
        OrgPlan(1, "cert", (LIAISON, ANALYST), True),
        OrgPlan(2, "cyber-command", (LIAISON, ANALYST), False),
        OrgPlan(0, "industry-partner", (LIAISON, ANALYST), False),
    ),
    secretariat=(UserPlan(("admin",), True),),
    rfas=(
        RfaPlan(
            requester=0,
            tlp="red",
            stage="active",
            withdraw=False,
            info_round=True,
            route_to=(1, 2),
            exclude=(),
            exclude_nation=False,
            offers=(OfferPlan(0, "accepted", True), OfferPlan(1, "declined", True)),
            items=(
                ItemPlan("note", "red", 0, 0),
                ItemPlan("note", "green", 1, 0),
                ItemPlan("task", "amber", 2, 1),
                ItemPlan("indicator", "red", 0, 0),
                ItemPlan("indicator", "green", 1, 0),
            ),
            members=(),
            reasons=ALL,
            review_tlp=None,
        ),
        RfaPlan(
            requester=0,
            tlp="amber",
            stage="circulated",
            withdraw=False,
            info_round=False,
            route_to=(1,),
            exclude=(),
            exclude_nation=False,
            offers=(OfferPlan(0, "proposed", False),),
            items=(),
            members=(),
            reasons=ALL,
            review_tlp=None,
        ),
    ),
    seed=4,
    password_user=0,
    sign_in=True,
)


@pytest.fixture
def routes() -> list[Route]:
    """The API and the console (the admin adds minutes and nothing for these users)."""
    return [r for r in discover() if r.surface in ("api", "page")]


def _org_of(world: World, index: int) -> int:
    return sorted(o for o in world.orgs if not world.orgs[o].secretariat)[index]


def _person(world: World, org_index: int, role: str) -> int:
    org = _org_of(world, org_index)
    rfa = next(r for r in world.rfas.values() if r.tlp == "red")
    return min(
        p.id
        for p in world.people.values()
        if p.org_id == org and role in p.roles and p.id not in rfa.members
    )


def _check(routes: list[Route], who: Callable[[World], list[int]], plan: Plan = PLAN) -> Checker:
    """Build the fixed scenario, probe every route with every id as ``who``, roll back."""
    with transaction.atomic():
        built = build(plan)
        checker = Checker(built, routes, probes="all", stats=Counter(), only=who(built.world))
        checker.run()
        checker.check_outbox()
        transaction.set_rollback(True)
    return checker


def _problems(checker: Checker) -> str:
    return "\n".join(f"{f.where}: {f.problem}" for f in checker.findings)


def _routed_analyst(world: World) -> list[int]:
    """Org 1's analyst: its organisation takes part in the RED engagement, it is not named."""
    return [_person(world, 1, "analyst")]


def _outsider(world: World) -> list[int]:
    """Org 3's liaison: involved in nothing."""
    return [_person(world, 3, "liaison")]


def test_the_fixed_scenario_is_clean(routes: list[Route], no_template_capture: None) -> None:
    """Without a planted leak the same probes find nothing, and meet what the tests rely on."""
    checker = _check(routes, lambda w: _routed_analyst(w) + _outsider(w))
    assert not checker.findings, _problems(checker)
    world = checker.world
    red = next(r for r in world.rfas.values() if r.tlp == "red")
    analyst = View(world, world.people[_routed_analyst(world)[0]])
    assert red.engagement_id is not None and analyst.access(red) == "metadata"
    assert analyst.participates(red)
    assert checker.stats["hidden ids compared"] > 0 and checker.stats["seen ITEM"] > 0
    assert checker.stats["status 200"] > 20


def test_dropping_the_tlp_filter_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """Content access for everyone involved, whatever the TLP: the RED request's content and
    the RED note reach an analyst who is not a named member."""

    def access(self: authz.Viewer, rfa: RequestForAssistance) -> authz.Access:
        return authz.Access.CONTENT if self.sees(rfa) else authz.Access.NONE

    def item_filter(user: User, engagement: Any) -> Q:
        if authz.engagement_access(user, engagement) is not authz.Access.CONTENT:
            return Q(pk__in=[])
        return Q()

    monkeypatch.setattr(authz.Viewer, "access", access)
    monkeypatch.setattr(authz, "item_filter", item_filter)
    checker = _check(routes, _routed_analyst)
    found = _problems(checker)
    assert "request content (title)" in found, found
    assert "engagement item (note body" in found, found
    assert "access is metadata" in found, found


def test_dropping_the_participation_filter_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """Every submitted request for every organisation: an outsider sees both."""
    original = authz.visible_requests

    def visible_requests(user: User) -> QuerySet[RequestForAssistance]:
        return original(user) | RequestForAssistance.objects.filter(submitted_at__isnull=False)

    monkeypatch.setattr(authz, "visible_requests", visible_requests)
    checker = _check(routes, _outsider)
    found = _problems(checker)
    assert "a request it is not involved in" in found, found
    assert "answers unlike a missing one" in found, found


def test_one_organisation_too_many_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """A user also sees what the next organisation asked for."""
    original = authz.visible_requests

    def visible_requests(user: User) -> QuerySet[RequestForAssistance]:
        mine = original(user)
        if user.organisation_id is None:
            return mine
        other = (
            Organisation.objects.exclude(pk=user.organisation_id)
            .exclude(kind="secretariat")
            .order_by("pk")
            .first()
        )
        return mine | RequestForAssistance.objects.filter(requester=other)

    monkeypatch.setattr(authz, "visible_requests", visible_requests)
    checker = _check(routes, _outsider)
    found = _problems(checker)
    assert "a request it is not involved in" in found, found


def test_content_in_a_log_line_is_caught(
    routes: list[Route],
    monkeypatch: pytest.MonkeyPatch,
    leak_logs: LogCapture,
    no_template_capture: None,
) -> None:
    """A debug line with the request's title (TLP:RED, AMBER) is a leak to the logs."""
    from vcisc.assistance import api as assistance_api

    original = assistance_api.rfa_out

    def rfa_out(user: Any, rfa: RequestForAssistance, *args: Any, **kwargs: Any) -> Any:
        logging.getLogger("vcisc.assistance").debug("showing %s: %s", rfa.reference, rfa.title)
        return original(user, rfa, *args, **kwargs)

    monkeypatch.setattr(assistance_api, "rfa_out", rfa_out)
    with transaction.atomic():
        leak_logs.clear()
        built = build(PLAN)
        checker = Checker(built, routes, probes="all", stats=Counter(), only=_outsider(built.world))
        checker.run()
        requester = next(iter(built.world.rfas.values())).requester_id
        reader = min(p.id for p in built.world.people.values() if p.org_id == requester)
        checker.only = [reader]
        checker.run()
        extra = checker.sign_in()
        checker.check_logs(leak_logs.lines, extra)
        transaction.set_rollback(True)
    found = _problems(checker)
    assert "request content (title), TLP:RED" in found, found
    assert "request content (title), TLP:AMBER" in found, found
    # The sign-in's password and the bad token are looked for too (and are not there).
    assert "password" not in found


def test_content_in_a_notification_is_caught(no_template_capture: None) -> None:
    """A routing notification that carried a TLP:RED title to a routed organisation."""
    from vcisc.notify.models import OutboxMessage

    with transaction.atomic():
        built = build(PLAN)
        red = next(r for r in built.world.rfas.values() if r.tlp == "red")
        title = next(
            s.token
            for s in built.world.secrets.values()
            if s.kind is Kind.RFA_CONTENT and s.rfa_id == red.id and s.what == "title"
        )
        routed = _org_of(built.world, 2)
        sent = OutboxMessage.objects.filter(organisation_id=routed, rfa_id=red.id)
        assert sent.exists()
        sent.update(body=f"Title: Incident {title}")
        checker = Checker(built, [], probes=0, stats=Counter())
        checker.check_outbox()
        transaction.set_rollback(True)
    found = _problems(checker)
    assert f"shows {title}: request content (title)" in found, found


@pytest.fixture
def broken_tlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def access(self: authz.Viewer, rfa: RequestForAssistance) -> authz.Access:
        return authz.Access.CONTENT if self.sees(rfa) else authz.Access.NONE

    monkeypatch.setattr(authz.Viewer, "access", access)
    yield


def test_the_random_hunt_fails_on_a_broken_scoping_function(
    broken_tlp: None, leak_logs: LogCapture, fast_passwords: None, no_template_capture: None
) -> None:
    """The hunt as ``make test`` runs it (random scenarios, sampled probes) stops at the first
    scenario where the broken rule shows, with the report of the leak."""
    routes = discover()
    stats: Counter[str] = Counter()

    @settings(
        max_examples=200,
        derandomize=True,  # the same scenarios each run: this test must not depend on luck
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(plan=plans())
    def scenario(plan: Plan) -> None:
        checker = hunt(plan, routes, leak_logs, stats, 2)
        assert not checker.findings, checker.report()

    with pytest.raises(AssertionError, match=r"leak\(s\) found"):
        scenario()
    print(f"the broken rule showed after {stats['scenarios']} scenario(s)")
    assert stats["scenarios"] < 200  # it stopped early, at a leak


def test_a_hidden_id_anywhere_in_an_answer_is_caught(
    routes: list[Route], no_template_capture: None
) -> None:
    """Ids are UUIDs (issue 4, part 3), so an answer that names a request, an offer or an
    engagement the user may not know of is caught by its id alone: in a link, in free text, as a
    JSON value — and an id the user may know of is not reported."""
    with transaction.atomic():
        built = build(PLAN)
        world = built.world
        checker = Checker(built, routes, probes="all", stats=Counter(), only=_outsider(world))
        view = checker.view(world.people[_outsider(world)[0]])
        red = next(r for r in world.rfas.values() if r.tlp == "red")
        offer = next(o for o in world.offers.values() if o.rfa_id == red.id)
        texts = {
            "a link": f'<a href="/requests/{red.id}/">see</a>',
            "free text": f"offer {offer.id} was accepted",
            "a header value": f"X-Related: {red.engagement_id}",
        }
        for where, text in texts.items():
            found = list(checker.leaks_in(view, text))
            assert found, f"an id in {where} went unnoticed"
        found = list(checker.json_leaks(view, {"rfa_id": str(red.id)}, names_public=False))
        assert any("a request it is not involved in" in f for f in found), found
        found = list(
            checker.json_leaks(view, {"engagement_id": str(red.engagement_id)}, names_public=False)
        )
        assert any("an engagement it takes no part in" in f for f in found), found
        requester = world.people[
            min(p.id for p in world.people.values() if p.org_id == red.requester_id)
        ]
        assert not list(checker.leaks_in(checker.view(requester), texts["a link"]))
        transaction.set_rollback(True)


#: PLAN, with the AMBER request engaged with org 2 instead (so org 0 takes part in two
#: engagements, org 1 and org 2 in one each), the same indicator value in both engagements
#: (GREEN in the RED request's, AMBER in the other's), and an indicator posted over TAXII to
#: each kind of collection.
LINKED = replace(
    PLAN,
    rfas=(
        PLAN.rfas[0],
        replace(
            PLAN.rfas[1],
            stage="active",
            route_to=(2,),
            offers=(OfferPlan(0, "accepted", False),),
        ),
    ),
    shares=(SharePlan(0, 1, ("green", "amber"), (0, 0)),),
    posts=(PostPlan(1, "green", 0), PostPlan(3, "amber", 0)),
)


def _linked(routes: list[Route], who: Callable[[World], list[int]]) -> Checker:
    """Like :func:`_check` for LINKED, with the TAXII routes too (its collections)."""
    routes = routes + [r for r in discover() if r.label.startswith("taxii:")]
    return _check(routes, who, LINKED)


def _other_helper(world: World) -> list[int]:
    """Org 2's liaison: it takes part in the AMBER engagement only (it declined the RED one)."""
    return [_person(world, 2, "liaison")]


def test_the_linked_scenario_is_clean(routes: list[Route], no_template_capture: None) -> None:
    """The correlation, the TAXII objects and their canaries are there, and nothing leaks."""
    checker = _linked(routes, _other_helper)
    assert not checker.findings, _problems(checker)
    world = checker.world
    assert len(world.correlations) == 1 and world.collections
    assert checker.stats["seen SHARED_VALUE"] > 0, checker.stats
    assert checker.stats["seen FEDERATION_OBJECT"] > 0, checker.stats
    assert checker.stats["hidden collection"] > 0, checker.stats
    assert checker.stats["taxii fast read answered"] > 0, checker.stats


def test_a_taxii_fast_read_that_skips_the_scoping_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """TAXII's fast reads deciding with a collection look-up that asks no one's rights: an
    outsider's client reads every engagement's collection there, while Django's path says
    404; the checker compares the two on every TAXII object read."""
    from vcisc.engagements.models import Engagement
    from vcisc.sharing.taxii import fast, scopes
    from vcisc.sharing.taxii.errors import TaxiiError

    def anyone(user: User, cid: str) -> scopes.Collection:
        eng = Engagement.objects.select_related("rfa").filter(pk=cid).first()
        if eng is None:
            raise TaxiiError(404, "Collection not found", "no such collection")
        return scopes._engagement(user, eng, Q())

    monkeypatch.setattr(fast, "get_collection", anyone)
    taxii = routes + [r for r in discover() if r.label.startswith("taxii:")]
    found = _problems(_check(taxii, _outsider))
    assert "TAXII fast read" in found and "where Django's path answered 404" in found, found


def test_a_correlation_shown_to_who_may_not_see_both_sides_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """The correlation's other side, unfiltered: an organisation that takes part in one of the
    two engagements learns of the other engagement and of its indicator."""
    from vcisc.engagements import indicators
    from vcisc.engagements.models import Engagement, Indicator
    from vcisc.web import views

    original = indicators.correlations_visible
    readable = indicators.indicators_visible

    def correlations_visible(user: User, engagement: Engagement) -> list[dict[str, Any]]:
        def other_side_unfiltered(who: User, eng: Engagement) -> Any:
            if eng.pk == engagement.pk:
                return readable(who, eng)
            return Indicator.objects.filter(engagement=eng)

        with monkeypatch.context() as patch:
            patch.setattr(indicators, "indicators_visible", other_side_unfiltered)
            return original(user, engagement)

    monkeypatch.setattr(indicators, "correlations_visible", correlations_visible)
    monkeypatch.setattr(views, "correlations_visible", correlations_visible)
    checker = _linked(routes, _other_helper)
    found = _problems(checker)
    assert "an indicator it may not see" in found, found
    assert "an engagement it takes no part in" in found, found


#: PLAN with a federation feed holding the values of the RED request's TLP:RED and TLP:GREEN
#: indicators (and one of its own): two feed matches.
FEEDS = replace(PLAN, feed=True)


def test_a_feed_match_is_shown_to_who_may_read_the_indicator_only(
    routes: list[Route], no_template_capture: None
) -> None:
    """Org 1's analyst (not a named member) reads the feed, and the match on the GREEN
    indicator, not the one on the RED indicator."""
    checker = _check(routes, _routed_analyst, FEEDS)
    assert not checker.findings, _problems(checker)
    assert checker.world.feed_matches == 2
    assert checker.stats["seen FEDERATION_OBJECT"] > 0, checker.stats


def test_a_feed_match_on_an_indicator_one_may_not_read_is_caught(
    routes: list[Route], monkeypatch: pytest.MonkeyPatch, no_template_capture: None
) -> None:
    """Feed matches of every indicator of the engagement, whatever its TLP: a participant that
    is not a named member learns of the TLP:RED indicator (its id)."""
    from vcisc.engagements import indicators
    from vcisc.engagements.models import Engagement, Indicator
    from vcisc.feeds import services
    from vcisc.web import views

    original = services.feed_matches_visible

    def feed_matches_visible(user: User, engagement: Engagement) -> list[dict[str, Any]]:
        with monkeypatch.context() as patch:
            patch.setattr(
                indicators,
                "indicators_visible",
                lambda _who, eng: Indicator.objects.filter(engagement=eng),
            )
            return original(user, engagement)

    monkeypatch.setattr(services, "feed_matches_visible", feed_matches_visible)
    monkeypatch.setattr(views, "feed_matches_visible", feed_matches_visible)
    found = _problems(_check(routes, _routed_analyst, FEEDS))
    assert "an indicator it may not see" in found, found


#: LINKED, with an exercise controller in org 0 (the requester, a participant of the AMBER
#: engagement): content access to the engagement, but not the workspace roles.
CONTROLLED = replace(
    LINKED,
    orgs=(
        replace(
            LINKED.orgs[0],
            users=(*LINKED.orgs[0].users, UserPlan(("exercise-control",), True)),
        ),
        *LINKED.orgs[1:],
    ),
)


def test_the_served_misp_feed_answers_a_participant_without_workspace_roles(
    no_template_capture: None,
) -> None:
    """Found by the hunt: the served MISP feed answered 500 to a participating organisation's
    user without the liaison or analyst role (its engagement was listed, the export refused
    it). The feed now holds for each user what the API's MISP export gives them."""
    routes = [r for r in discover() if r.label.startswith("misp-feed")]

    def controller(world: World) -> list[int]:
        org = _org_of(world, 0)
        return [
            p.id
            for p in world.people.values()
            if p.org_id == org and p.roles == frozenset({"exercise-control"})
        ]

    with transaction.atomic():
        built = build(CONTROLLED)
        who = controller(built.world)
        assert who
        checker = Checker(built, routes, probes="all", stats=Counter(), only=who)
        checker.run()
        transaction.set_rollback(True)
    assert not checker.findings, _problems(checker)

"""The one place that decides who may see or do what: TLP (DOMAIN.md §5), participation, role.

Every read of a request, offer, timeline entry or engagement item goes through a function here;
routes and services never test ownership themselves (STYLE.md habit 2).

Visibility of a request for assistance
---------------------------------------
An organisation learns that a request exists only if it is *involved*: it asked (the requester),
it coordinates (the secretariat, once the request is submitted), it was routed the request, or it
takes part in the engagement. Everyone else gets nothing — not in lists, counts, or by URL (404).

What an involved user may read depends on the TLP of the request:

=====================  ==============  ==================================================
who                    TLP:RED         any other TLP
=====================  ==============  ==================================================
requester organisation content         content
named engagement member content         content
participant (not named) metadata       content
secretariat            metadata        content
routed organisation    metadata        content
=====================  ==============  ==================================================

"Metadata" is what routing needs (reference, state, severity, sector, services, languages,
deadlines, requesting nation); "content" adds what happened, to whom and under which caveats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet

from vcisc.assistance.models import Offer, RequestForAssistance, Routing, TimelineEntry
from vcisc.engagements.models import Engagement, EngagementMember, Participant
from vcisc.errors import Forbidden, NotFound
from vcisc.federation.models import NationKind, Organisation, Role, User
from vcisc.tlp import Tlp

__all__ = [
    "Access",
    "Viewer",
    "engagement_access",
    "get_engagement",
    "get_offer",
    "get_rfa",
    "is_coordinator",
    "is_secretariat",
    "item_visible",
    "offers_visible",
    "require_role",
    "rfa_access",
    "timeline_visible",
    "visible_engagements",
    "visible_offers",
    "visible_requests",
]


class Access(IntEnum):
    NONE = 0
    METADATA = 1
    CONTENT = 2


def _org(user: User) -> Organisation | None:
    if not user.is_authenticated or not user.is_active:
        return None
    org = user.organisation
    if org is None or not org.active:
        return None
    return org


def is_secretariat(user: User) -> bool:
    org = _org(user)
    return org is not None and org.is_secretariat


def is_coordinator(user: User) -> bool:
    return is_secretariat(user) and user.has_role(Role.COORDINATOR)


def is_admin(user: User) -> bool:
    return user.is_active and user.has_role(Role.ADMIN)


def is_observer_only(user: User) -> bool:
    """Observer nations, and users whose only role is observer, see no operational material."""
    org = _org(user)
    if org is None:
        return True
    if org.nation is not None and org.nation.kind == NationKind.OBSERVER:
        return True
    return set(user.roles or []) <= {Role.OBSERVER.value}


def require_role(user: User, *roles: Role) -> None:
    """Raise 403 unless the user holds one of ``roles``."""
    if not any(user.has_role(r) for r in roles):
        names = " or ".join(r.value for r in roles)
        raise Forbidden(f"this needs the {names} role")


# --- requests for assistance -------------------------------------------------------------------


def visible_requests(user: User) -> QuerySet[RequestForAssistance]:
    """Every request the user's organisation is involved in (and nothing else)."""
    org = _org(user)
    base = RequestForAssistance.objects.select_related("requester", "requester__nation")
    if org is None or (is_observer_only(user) and not org.is_secretariat):
        # Observers see exercise material only, which a later issue shares with them explicitly.
        return base.none()
    involved = Q(requester=org)
    # "Once it is submitted": a draft withdrawn before submission never was, and stays the
    # requester's alone (its state is no longer "draft", so the state cannot tell).
    submitted = Q(submitted_at__isnull=False)
    if org.is_secretariat:
        if not user.has_role(Role.COORDINATOR):
            # Operators (admin) and others at the secretariat run the platform; they do not
            # thereby learn which nations asked for help.
            return base.none()
        involved |= submitted
    routed = Routing.objects.filter(rfa=OuterRef("pk"), organisation=org)
    participating = Participant.objects.filter(engagement__rfa=OuterRef("pk"), organisation=org)
    involved |= (Exists(routed) | Exists(participating)) & submitted
    return base.filter(involved)


def _is_participant(org: Organisation, rfa: RequestForAssistance) -> bool:
    return Participant.objects.filter(engagement__rfa=rfa, organisation=org).exists()


@dataclass(frozen=True)
class Viewer:
    """What the rules need to know about one user, loaded in a few queries and then applied to
    any number of requests (lists would otherwise cost queries per row).

    :meth:`sees` is the Python mirror of :func:`visible_requests`; a test holds them equal.
    """

    user: User
    org: Organisation | None
    sees_nothing: bool
    coordinator: bool
    routed: frozenset[UUID]
    participating: frozenset[UUID]
    member_of: frozenset[UUID]

    @classmethod
    def of(cls, user: User, rfa_ids: Iterable[UUID] | None = None) -> Viewer:
        """Load the user's involvement, for ``rfa_ids`` only when given."""
        org = _org(user)
        nothing = (
            org is None
            or (is_observer_only(user) and not org.is_secretariat)
            or (org.is_secretariat and not user.has_role(Role.COORDINATOR))
        )
        if nothing or org is None:
            empty: frozenset[UUID] = frozenset()
            return cls(user, org, True, False, empty, empty, empty)
        ids = None if rfa_ids is None else list(rfa_ids)

        def load(qs: QuerySet[Any], field: str) -> frozenset[UUID]:
            if ids is not None:
                qs = qs.filter(**{f"{field}__in": ids})
            return frozenset(qs.values_list(field, flat=True))

        return cls(
            user=user,
            org=org,
            sees_nothing=False,
            coordinator=org.is_secretariat,
            routed=load(Routing.objects.filter(organisation=org), "rfa_id"),
            participating=load(Participant.objects.filter(organisation=org), "engagement__rfa_id"),
            member_of=load(EngagementMember.objects.filter(user=user), "engagement__rfa_id"),
        )

    def sees(self, rfa: RequestForAssistance) -> bool:
        if self.sees_nothing or self.org is None:
            return False
        if rfa.requester_id == self.org.pk:
            return True
        if rfa.submitted_at is None:  # a draft, or a draft withdrawn before submission
            return False
        return self.coordinator or rfa.pk in self.routed or rfa.pk in self.participating

    def access(self, rfa: RequestForAssistance) -> Access:
        """How much of ``rfa`` the user may read (the table in this module's docstring)."""
        if not self.sees(rfa):
            return Access.NONE
        assert self.org is not None
        if rfa.requester_id == self.org.pk or rfa.tlp != Tlp.RED:
            return Access.CONTENT
        if rfa.pk in self.participating and rfa.pk in self.member_of:
            return Access.CONTENT
        return Access.METADATA

    def involvement(self, rfa: RequestForAssistance) -> set[str]:
        """How the user's organisation is involved: requester, secretariat, routed, participant."""
        if not self.sees(rfa):
            return set()
        assert self.org is not None
        roles: set[str] = set()
        if rfa.requester_id == self.org.pk:
            roles.add("requester")
        if self.coordinator:
            roles.add("secretariat")
        if rfa.pk in self.routed:
            roles.add("routed")
        if rfa.pk in self.participating:
            roles.add("participant")
        return roles


def rfa_access(user: User, rfa: RequestForAssistance) -> Access:
    """How much of ``rfa`` the user may read; NONE means it must look absent."""
    return Viewer.of(user, [rfa.pk]).access(rfa)


def get_rfa(user: User, rfa_id: UUID, *, for_update: bool = False) -> RequestForAssistance:
    """The request if the user's organisation is involved, else 404 (never 403)."""
    qs = visible_requests(user)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    rfa = qs.filter(pk=rfa_id).first()
    if rfa is None:
        raise NotFound(f"request {rfa_id} not found")
    return rfa


def role_in(user: User, rfa: RequestForAssistance) -> set[str]:
    """How the user's organisation is involved in ``rfa`` (empty if it is not)."""
    return Viewer.of(user, [rfa.pk]).involvement(rfa)


# --- offers -------------------------------------------------------------------------------------


def visible_offers(user: User) -> QuerySet[Offer]:
    """Every offer the user may see: on a request it may see, all offers if its organisation is
    the requester or the secretariat, else its own organisation's (who else offered is private)."""
    org = _org(user)
    qs = Offer.objects.filter(rfa__in=visible_requests(user)).select_related(
        "organisation", "organisation__nation"
    )
    if org is None:
        return qs.none()
    if org.is_secretariat:
        return qs
    return qs.filter(Q(rfa__requester=org) | Q(organisation=org))


def offers_visible(user: User, rfa: RequestForAssistance) -> QuerySet[Offer]:
    """The offers on one request that the user may see (the rule of :func:`visible_offers`)."""
    return visible_offers(user).filter(rfa=rfa)


def get_offer(user: User, offer_id: UUID) -> Offer:
    offer = Offer.objects.select_related("rfa", "organisation").filter(pk=offer_id).first()
    if offer is None or not offers_visible(user, offer.rfa).filter(pk=offer.pk).exists():
        raise NotFound(f"offer {offer_id} not found")
    return offer


# --- timeline -----------------------------------------------------------------------------------


def timeline_visible(user: User, rfa: RequestForAssistance) -> QuerySet[TimelineEntry]:
    org = _org(user)
    qs = TimelineEntry.objects.filter(rfa=rfa).select_related("actor_organisation")
    access = rfa_access(user, rfa)
    if org is None or access is Access.NONE:
        return qs.none()
    participant = _is_participant(org, rfa)
    if rfa.requester_id == org.pk:
        return qs
    if org.is_secretariat:
        return qs.filter(participants_only=False)
    mine = Q(audience__isnull=True) | Q(audience=org)
    if not participant:
        mine &= Q(participants_only=False)
    return qs.filter(mine)


# --- engagements --------------------------------------------------------------------------------


def visible_engagements(user: User) -> QuerySet[Engagement]:
    """Engagements of requests the user's organisation asked for, coordinates (the secretariat's
    coordinators) or takes part in. An organisation that was only routed the request sees the
    request, but not the engagement: who helped is private to it (DOMAIN.md §1)."""
    org = _org(user)
    qs = Engagement.objects.filter(rfa__in=visible_requests(user)).select_related("rfa")
    if org is None:
        return qs.none()
    if org.is_secretariat:
        return qs  # visible_requests already leaves out everyone there but coordinators
    taking_part = Participant.objects.filter(engagement=OuterRef("pk"), organisation=org)
    return qs.filter(Q(rfa__requester=org) | Exists(taking_part))


def get_engagement(user: User, engagement_id: UUID) -> Engagement:
    eng = visible_engagements(user).filter(pk=engagement_id).first()
    if eng is None:
        raise NotFound(f"engagement {engagement_id} not found")
    return eng


def engagement_access(user: User, engagement: Engagement) -> Access:
    """CONTENT for participants (workspace items then filtered by their TLP), else METADATA."""
    org = _org(user)
    if org is None or rfa_access(user, engagement.rfa) is Access.NONE:
        return Access.NONE
    if _is_participant(org, engagement.rfa):
        return Access.CONTENT
    return Access.METADATA


def item_visible(user: User, engagement: Engagement, tlp: str) -> bool:
    """Whether a workspace item (task, note, SITREP, review) of ``tlp`` may be read by the user.

    Workspace items go to the participants only; TLP:RED items to the named members only.
    """
    if engagement_access(user, engagement) is not Access.CONTENT:
        return False
    if tlp == Tlp.RED:
        return EngagementMember.objects.filter(engagement=engagement, user=user).exists()
    return True


def content_filter(user: User, engagement: Engagement) -> Q | None:
    """None unless :func:`engagement_access` is CONTENT; then :func:`item_filter`'s filter.

    The two in one :class:`Viewer` (three queries) instead of the eight they cost together,
    for the paths that ask both on every request (a TAXII read); a test holds it equal to them.
    """
    org = _org(user)
    if org is None:
        return None
    viewer = Viewer.of(user, [engagement.rfa_id])
    if viewer.access(engagement.rfa) is Access.NONE:
        return None
    if engagement.rfa_id not in viewer.participating:
        return None
    if engagement.rfa_id in viewer.member_of:  # one engagement per request
        return Q()
    return ~Q(tlp=Tlp.RED)


def item_filter(user: User, engagement: Engagement) -> Q:
    """A filter for workspace item querysets equivalent to :func:`item_visible`."""
    if engagement_access(user, engagement) is not Access.CONTENT:
        return Q(pk__in=[])
    if EngagementMember.objects.filter(engagement=engagement, user=user).exists():
        return Q()
    return ~Q(tlp=Tlp.RED)

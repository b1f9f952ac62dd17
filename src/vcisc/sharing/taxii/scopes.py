"""Which collections a user may read or write, decided by :mod:`vcisc.authz` (DOMAIN.md §5, §7).

Two kinds of collection:

* **An engagement's collection** (id = the engagement's id), for the users of its participant
  organisations — exactly those to whom :func:`vcisc.authz.engagement_access` gives content
  access. Its objects are filtered row by row with :func:`vcisc.authz.item_filter`: TLP:RED
  objects reach the engagement's named members only. It is writable by participants with the
  liaison or analyst role while the engagement is open (the workspace rule of
  ``vcisc.engagements.services``); TLP:RED only by named members.
* **Federation collections**, one per sharing scope: TLP:CLEAR and TLP:GREEN. Every user of an
  active member or partner organisation (and of the secretariat) reads them; observers see no
  operational material (the rule of :func:`vcisc.authz.is_observer_only`). Liaison officers and
  analysts of those organisations, and the secretariat's coordinators, write there; an object
  must be marked no stricter than the scope (AMBER and RED never leave an engagement).

A collection the user may not read does not exist for them: 404, worded as for a missing id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from django.db.models import Exists, OuterRef, Q

from vcisc import authz
from vcisc.engagements.models import Engagement, Participant
from vcisc.engagements.services import OPEN_STATES
from vcisc.federation.models import Role, User
from vcisc.tlp import Tlp

__all__ = ["FEDERATION_SCOPES", "Collection", "get_collection", "readable_collections"]

#: The federation collections: fixed ids (they name no request, so they may be published).
FEDERATION_SCOPES: dict[UUID, Tlp] = {
    uuid.UUID("5f1e0c55-7c1b-4d5e-9a51-0c1ea70c1ea7"): Tlp.CLEAR,
    uuid.UUID("5f1e0c55-7c1b-4d5e-9a51-000000009eee"): Tlp.GREEN,
}


@dataclass(frozen=True)
class Collection:
    """One collection as this user sees it (§5.2.1 plus what the views need)."""

    id: UUID
    title: str
    description: str
    can_read: bool
    can_write: bool
    engagement: Engagement | None = None
    #: Federation collections: the widest TLP an object there may carry.
    scope: Tlp | None = None
    #: The rows this user may read (None: all of the collection's rows).
    row_filter: Q | None = None

    def info(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "title": self.title,
            "description": self.description,
            "can_read": self.can_read,
            "can_write": self.can_write,
            "media_types": ["application/stix+json;version=2.1"],
        }


def _writer(user: User) -> bool:
    return user.has_role(Role.LIAISON) or user.has_role(Role.ANALYST)


def federation_reader(user: User) -> bool:
    """Members, partners and the secretariat; not observers, nor inactive accounts."""
    if not user.is_authenticated or not user.is_active:
        return False
    org = user.organisation
    return org is not None and org.active and not authz.is_observer_only(user)


def _federation(user: User, cid: UUID) -> Collection | None:
    scope = FEDERATION_SCOPES.get(cid)
    if scope is None or not federation_reader(user):
        return None
    return Collection(
        id=cid,
        title=f"Federation {scope.label}",
        description=f"Shared with every member and partner of the federation ({scope.label}).",
        can_read=True,
        can_write=_writer(user) or authz.is_coordinator(user),
        scope=scope,
    )


def _engagement(user: User, eng: Engagement, row_filter: Q | None = None) -> Collection:
    return Collection(
        id=eng.pk,
        title=f"Engagement {eng.rfa.reference}",
        description="Indicators and workspace items of the engagement you take part in.",
        can_read=True,
        can_write=_writer(user) and eng.rfa.state in OPEN_STATES,
        engagement=eng,
        row_filter=authz.item_filter(user, eng) if row_filter is None else row_filter,
    )


def _participating(user: User) -> list[tuple[Engagement, Q]]:
    """The engagements the user has content access to, with their rows' TLP filters."""
    org = user.organisation if user.is_authenticated else None
    if org is None:
        return []
    taking_part = Participant.objects.filter(engagement=OuterRef("pk"), organisation=org)
    qs = authz.visible_engagements(user).filter(Exists(taking_part)).order_by("opened_at", "pk")
    return [(e, f) for e in qs if (f := authz.content_filter(user, e)) is not None]


def readable_collections(user: User) -> list[Collection]:
    """The federation collections, then one per engagement the user takes part in."""
    found = [c for cid in FEDERATION_SCOPES if (c := _federation(user, cid)) is not None]
    return found + [_engagement(user, e, f) for e, f in _participating(user)]


def get_collection(user: User, cid: str) -> Collection:
    """The collection if the user may read it; else the same 404 as for a missing id."""
    from vcisc.sharing.taxii.errors import TaxiiError

    missing = TaxiiError(404, "Collection not found", f"no collection {cid} here")
    try:
        key = UUID(cid)
    except ValueError:
        raise missing from None
    fed = _federation(user, key)
    if fed is not None:
        return fed
    # Content access (participation, and the request visible to the user) is the whole rule:
    # it implies the engagement is among authz.visible_engagements, whose query costs more
    # than the rest of a TAXII read's scoping together, so it is not asked again here; the
    # access and the rows' TLP filter come from one look-up (authz.content_filter).
    eng = Engagement.objects.select_related("rfa").filter(pk=key).first()
    row_filter = None if eng is None else authz.content_filter(user, eng)
    if eng is None or row_filter is None:
        raise missing
    return _engagement(user, eng, row_filter)

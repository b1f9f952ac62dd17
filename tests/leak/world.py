"""What a generated scenario holds, and who may see what of it: the leak suite's oracle.

Pure Python (no Django, and deliberately nothing from :mod:`vcisc.authz`): the rules are written
down a second time from DOMAIN.md §1/§5 and the need-to-know section of docs/architecture.md, so
that a mistake in the application's scoping shows up as a disagreement instead of being copied.

The builder (``build.py``) records here what it did through the services: every organisation,
user, request, routing, offer, participant, named member, workspace item and free-text reason,
and a *canary* — a unique random token — planted in every text it wrote. The checker
(``checker.py``) then asks :class:`View` whether the acting user may see the object a token (a
reference, an id) belongs to.

The rules, as this oracle applies them
--------------------------------------
* **Sees nothing**: an anonymous or deactivated account; a user of an observer nation (observers
  see only exercise material shared with them, which does not exist yet); a user whose only role
  is ``observer`` (or who has no role); at the secretariat, anyone without the ``coordinator``
  role (operators run the platform, they do not coordinate requests).
* **Involved** in a request: its requester organisation; once it was *submitted* (a draft
  withdrawn before submission never was), the secretariat's coordinators, the organisations it
  was routed to and the organisations taking part in its engagement.
* **Content** of a request (title, what happened, to whom, caveats): the requester organisation
  always; for TLP:RED only the named members of the engagement besides; for any other TLP every
  involved user. Everyone else involved gets the routing *metadata* (reference, state, severity,
  sector, services, languages, ICS protocols and vendors, deadlines, requesting nation).
* **Engagement** (that it exists, who takes part): the requester, the participants and the
  secretariat's coordinators — "nations that are not involved in an engagement must not learn
  that it exists … or who helped": an organisation that was routed the request but takes no part
  does not see it. Its workspace (tasks, notes, SITREPs, review) goes to participants only,
  TLP:RED items to named members only.
* **Offers**: on a request the user is involved in, seen by the requester, the secretariat's
  coordinators and the offering organisation (who else offered is private). Offer ids of
  *accepted* offers are also known to fellow participants (participation implies it).
* **Reasons** (free text given with a state change or an offer decision): only with content
  access to the request (free text may repeat what TLP:RED protects), and only to whom the event
  concerns: requester and secretariat for triage decisions, additionally the offering
  organisation for an offer's decision, everyone involved for a withdrawal, start of triage or
  expiry.
* **Who is involved** (organisation names and ids): a user knows its own organisation and the
  secretariat; for each request it is involved in, the requester; the requester organisation and
  the coordinators also know whom it was routed to and who offered; participants know the
  participants; content readers know the excluded organisations (part of the content).
  Coordinators know every organisation (they route). Directory routes (described in
  ``routes.py``) list every organisation by design.
* **Correlations**: the same indicator value in two engagements. The value is seen by whoever
  may read either indicator; the *pair* (the other engagement, its reference, the other
  indicator's id) only by whoever may read both — which the identifier checks hold, as the
  other side's ids name an engagement, a request or an indicator. The secretariat's
  coordinators are also told the values when both indicators are TLP:CLEAR or GREEN (the
  community may know them), so that they can propose to connect the nations.
* **Federation collections** (TAXII, TLP:CLEAR and GREEN): what is posted there is read by every
  active user of a member or partner organisation or of the secretariat, except users whose only
  role is ``observer``. What is posted to an engagement's collection is a workspace item.
* **Federation feeds** (TLP:CLEAR or GREEN MISP feeds) are read by the federation collections'
  readers. A value both in a feed and in an engagement is seen by them (it is in the feed);
  the *match* (which indicator, which engagement) only by whoever may read the indicator.
* **People** (user e-mails and ids): a user knows its colleagues; coordinators and admins know
  everyone; participants know the named members of their engagement and the authors of the items
  they may read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from uuid import UUID

__all__ = [
    "Item",
    "Kind",
    "OfferRec",
    "Org",
    "Person",
    "Rfa",
    "Secret",
    "View",
    "World",
]

TLP_ORDER = ("clear", "green", "amber", "amber+strict", "red")
#: Content of these TLPs must never reach a log (issue 4, part 7).
NOT_FOR_LOGS = frozenset({"amber", "amber+strict", "red"})


class Kind(Enum):
    """What a canary token stands for."""

    RFA_CONTENT = "request content"
    RFA_META = "request metadata"
    REASON = "reason (free text)"
    OFFER_TEXT = "offer scope/conditions"
    ITEM = "engagement item"
    SHARED_VALUE = "indicator value held by two engagements"
    FEDERATION_OBJECT = "object in a federation collection"
    ORG_NAME = "organisation name"
    USER_EMAIL = "user e-mail"
    SECRET = "password"


@dataclass
class Org:
    id: int
    name: str
    kind: str
    nation_code: str | None
    nation_kind: str | None
    token: str = ""

    @property
    def secretariat(self) -> bool:
        return self.kind == "secretariat"


@dataclass
class Person:
    id: int
    email: str
    org_id: int | None
    roles: frozenset[str]
    active: bool = True
    token: str = ""
    label: str = ""


@dataclass
class Rfa:
    id: int
    reference: str
    requester_id: int
    tlp: str
    state: str = "draft"
    submitted: bool = False
    routed: set[int] = field(default_factory=set)
    participants: set[int] = field(default_factory=set)
    members: set[int] = field(default_factory=set)
    engagement_id: int | None = None
    excluded: set[int] = field(default_factory=set)


@dataclass
class OfferRec:
    id: int
    rfa_id: int
    org_id: int
    state: str = "proposed"


@dataclass
class Item:
    """A task, note, SITREP, indicator, after-action review or TAXII object of an engagement."""

    id: int
    kind: str
    rfa_id: int
    tlp: str
    author_id: int
    org_id: int


#: Audiences of a reason: who the event concerns (before the content-access rule applies).
TRIAGE_AUDIENCE = "requester+secretariat"
EVERYONE_INVOLVED = "involved"
OFFER_AUDIENCE = "offer"


@dataclass(frozen=True)
class Secret:
    """One canary: what it belongs to and which rule decides who may see it."""

    token: str
    kind: Kind
    what: str
    rfa_id: int | None = None
    offer_id: int | None = None
    item_id: int | None = None
    #: SHARED_VALUE: the item of the other engagement holding the same value.
    other_item_id: int | None = None
    org_id: int | None = None
    user_id: int | None = None
    audience: str = ""
    tlp: str = "clear"
    #: Also a value of a federation feed (TLP:CLEAR or GREEN): every federation reader may see
    #: it, whatever its own rule says.
    in_feed: bool = False


@dataclass
class World:
    """Everything the builder made for one scenario."""

    orgs: dict[int, Org] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    rfas: dict[int, Rfa] = field(default_factory=dict)
    offers: dict[int, OfferRec] = field(default_factory=dict)
    items: dict[int, Item] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    nations: dict[str, str] = field(default_factory=dict)  # code -> kind
    contacts: list[int] = field(default_factory=list)
    capabilities: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # api token key ids
    task_ids: list[int] = field(default_factory=list)
    #: Indicator ids (they name a workspace item, ``items``' key).
    indicators: dict[UUID, int] = field(default_factory=dict)
    #: Pairs of items (``items``' keys) holding the same indicator value.
    correlations: list[tuple[int, int]] = field(default_factory=list)
    #: Federation collections (TAXII) that objects were posted to.
    collections: list[UUID] = field(default_factory=list)
    #: Matches of engagement indicators with a federation feed.
    feed_matches: int = 0

    def add_secret(self, secret: Secret) -> str:
        assert secret.token not in self.secrets, secret.token
        self.secrets[secret.token] = secret
        return secret.token

    @cached_property
    def by_reference(self) -> dict[str, Rfa]:
        return {r.reference: r for r in self.rfas.values()}

    @cached_property
    def engagements(self) -> dict[int, Rfa]:
        return {r.engagement_id: r for r in self.rfas.values() if r.engagement_id is not None}

    def forget(self) -> None:
        """Drop cached indexes after the builder changed the world."""
        for name in ("by_reference", "engagements"):
            self.__dict__.pop(name, None)

    def secretariat(self) -> Org | None:
        return next((o for o in self.orgs.values() if o.secretariat), None)

    def describe(self) -> str:
        """The scenario, for a failure report."""
        lines = ["organisations:"]
        for o in self.orgs.values():
            nation = f"{o.nation_code} ({o.nation_kind})" if o.nation_code else "-"
            lines.append(f"  #{o.id} {o.name} [{o.kind}] nation {nation}")
        lines.append("users:")
        for p in self.people.values():
            state = "" if p.active else " DEACTIVATED"
            roles = ",".join(sorted(p.roles)) or "no role"
            lines.append(f"  #{p.id} {p.email} org #{p.org_id} [{roles}]{state}")
        lines.append("requests:")
        for r in self.rfas.values():
            lines.append(
                f"  #{r.id} {r.reference} by org #{r.requester_id} {r.state} TLP:{r.tlp.upper()}"
                f" submitted={r.submitted} routed={sorted(r.routed)}"
                f" participants={sorted(r.participants)} members={sorted(r.members)}"
                f" engagement={r.engagement_id} excluded={sorted(r.excluded)}"
            )
        for o in self.offers.values():
            lines.append(f"  offer #{o.id} on request #{o.rfa_id} by org #{o.org_id}: {o.state}")
        for i in self.items.values():
            lines.append(
                f"  {i.kind} #{i.id} on request #{i.rfa_id} TLP:{i.tlp.upper()} by user "
                f"#{i.author_id}"
            )
        for first, second in self.correlations:
            lines.append(f"  items #{first} and #{second} hold the same indicator value")
        for cid in self.collections:
            lines.append(f"  objects posted to federation collection {cid}")
        if self.feed_matches:
            lines.append(f"  a federation feed matches {self.feed_matches} indicator(s)")
        return "\n".join(lines)


class View:
    """What one user (or one organisation's points of contact) may see of a world."""

    def __init__(self, world: World, person: Person | None) -> None:
        self.world = world
        self.person = person
        org = world.orgs.get(person.org_id) if person and person.org_id is not None else None
        self.org = org
        roles = person.roles if person else frozenset()
        self.coordinator = bool(org and org.secretariat and "coordinator" in roles and self.active)
        self.admin = bool(self.active and "admin" in roles)

    # --- who the viewer is ------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.person is not None and self.person.active

    @cached_property
    def sees_nothing(self) -> bool:
        if not self.active or self.org is None or self.person is None:
            return True
        if self.org.secretariat:
            return not self.coordinator
        if self.org.nation_kind == "observer":
            return True
        return self.person.roles <= {"observer"}

    # --- requests -----------------------------------------------------------------------------

    def involved(self, rfa: Rfa) -> bool:
        if self.sees_nothing or self.org is None:
            return False
        if rfa.requester_id == self.org.id:
            return True
        if not rfa.submitted:
            return False
        return self.coordinator or self.org.id in rfa.routed or self.org.id in rfa.participants

    def content(self, rfa: Rfa) -> bool:
        if not self.involved(rfa):
            return False
        assert self.org is not None and self.person is not None
        if rfa.requester_id == self.org.id or rfa.tlp != "red":
            return True
        return self.org.id in rfa.participants and self.person.id in rfa.members

    def access(self, rfa: Rfa) -> str:
        if not self.involved(rfa):
            return "none"
        return "content" if self.content(rfa) else "metadata"

    def is_requester(self, rfa: Rfa) -> bool:
        return self.org is not None and rfa.requester_id == self.org.id

    def participates(self, rfa: Rfa) -> bool:
        return self.involved(rfa) and self.org is not None and self.org.id in rfa.participants

    # --- engagements ---------------------------------------------------------------------------

    def sees_engagement(self, rfa: Rfa) -> bool:
        if rfa.engagement_id is None or not self.involved(rfa):
            return False
        return self.is_requester(rfa) or self.coordinator or self.participates(rfa)

    def sees_item(self, item: Item) -> bool:
        rfa = self.world.rfas[item.rfa_id]
        if not self.participates(rfa):
            return False
        assert self.person is not None
        return item.tlp != "red" or self.person.id in rfa.members

    def sees_shared_value(self, secret: Secret) -> bool:
        """An indicator value held by two engagements (see the module docstring)."""
        assert secret.item_id is not None
        sides = [self.world.items[secret.item_id]]
        if secret.other_item_id is not None:
            sides.append(self.world.items[secret.other_item_id])
        if any(self.sees_item(item) for item in sides):
            return True
        told = len(sides) == 2 and all(item.tlp in ("clear", "green") for item in sides)
        return told and self.coordinator

    @cached_property
    def federation_reader(self) -> bool:
        """Reads the federation collections (see the module docstring)."""
        if not self.active or self.org is None or self.person is None:
            return False
        if self.org.nation_kind == "observer":
            return False
        return not self.person.roles <= {"observer"}

    # --- offers ----------------------------------------------------------------------------

    def sees_offer(self, offer: OfferRec) -> bool:
        rfa = self.world.rfas[offer.rfa_id]
        if not self.involved(rfa):
            return False
        assert self.org is not None
        return self.is_requester(rfa) or self.coordinator or offer.org_id == self.org.id

    def knows_offer_id(self, offer: OfferRec) -> bool:
        """The offer itself, or (accepted offers) a fellow participant's way in."""
        if self.sees_offer(offer):
            return True
        rfa = self.world.rfas[offer.rfa_id]
        return (
            offer.state in ("accepted", "active", "completed")
            and offer.org_id in rfa.participants
            and self.participates(rfa)
        )

    # --- reasons -------------------------------------------------------------------------------

    def sees_reason(self, secret: Secret) -> bool:
        assert secret.rfa_id is not None
        rfa = self.world.rfas[secret.rfa_id]
        if not self.content(rfa):
            return False
        assert self.org is not None
        if secret.audience == EVERYONE_INVOLVED:
            return True
        if self.is_requester(rfa) or self.coordinator:
            return True
        if secret.audience == OFFER_AUDIENCE:
            assert secret.offer_id is not None
            return self.world.offers[secret.offer_id].org_id == self.org.id
        return False

    # --- who is involved: organisations and people -----------------------------------------

    @cached_property
    def known_orgs(self) -> frozenset[int]:
        if not self.active or self.org is None:
            return frozenset()
        known = {self.org.id}
        sec = self.world.secretariat()
        if sec is not None:
            known.add(sec.id)
        if self.coordinator:
            return frozenset(self.world.orgs)
        for rfa in self.world.rfas.values():
            if not self.involved(rfa):
                continue
            known.add(rfa.requester_id)
            if self.is_requester(rfa):
                known |= rfa.routed | rfa.participants
                known |= {o.org_id for o in self.world.offers.values() if o.rfa_id == rfa.id}
            if self.participates(rfa):
                known |= rfa.participants
            if self.content(rfa):
                known |= rfa.excluded
        return frozenset(known)

    @cached_property
    def known_people(self) -> frozenset[int]:
        if not self.active or self.person is None:
            return frozenset()
        if self.coordinator or self.admin:
            return frozenset(self.world.people)
        known = {self.person.id}
        if self.org is not None:
            known |= {p.id for p in self.world.people.values() if p.org_id == self.org.id}
        for rfa in self.world.rfas.values():
            if self.participates(rfa):
                known |= rfa.members
        for item in self.world.items.values():
            if self.sees_item(item):
                known.add(item.author_id)
        return frozenset(known)

    @cached_property
    def known_nations(self) -> frozenset[str]:
        return frozenset(
            code
            for oid in self.known_orgs
            if (code := self.world.orgs[oid].nation_code) is not None
        )

    # --- the question the checker asks ------------------------------------------------------

    def may_see(self, secret: Secret, *, names_public: bool = False) -> bool:
        """Whether the token of ``secret`` may appear in what this viewer is shown."""
        kind = secret.kind
        if kind is Kind.SECRET:
            return False
        if secret.in_feed and self.federation_reader:
            return True
        if kind is Kind.ORG_NAME:
            return names_public or secret.org_id in self.known_orgs
        if kind is Kind.USER_EMAIL:
            return secret.user_id in self.known_people
        if kind is Kind.RFA_META:
            assert secret.rfa_id is not None
            return self.involved(self.world.rfas[secret.rfa_id])
        if kind is Kind.RFA_CONTENT:
            assert secret.rfa_id is not None
            return self.content(self.world.rfas[secret.rfa_id])
        if kind is Kind.OFFER_TEXT:
            assert secret.offer_id is not None
            return self.sees_offer(self.world.offers[secret.offer_id])
        if kind is Kind.ITEM:
            assert secret.item_id is not None
            return self.sees_item(self.world.items[secret.item_id])
        if kind is Kind.REASON:
            return self.sees_reason(secret)
        if kind is Kind.SHARED_VALUE:
            return self.sees_shared_value(secret)
        if kind is Kind.FEDERATION_OBJECT:
            return self.federation_reader
        raise AssertionError(kind)

    def why_not(self, secret: Secret) -> str:
        """A sentence for the failure report: why this viewer may not see ``secret``."""
        rfa = self.world.rfas.get(secret.rfa_id) if secret.rfa_id is not None else None
        parts = [f"{secret.kind.value} ({secret.what})"]
        if rfa is not None:
            parts.append(
                f"of {rfa.reference} (TLP:{rfa.tlp.upper()}, {rfa.state}); "
                f"the viewer's access is {self.access(rfa)}"
            )
        return ", ".join(parts)


def strictest(*labels: str) -> str:
    return max(labels, key=TLP_ORDER.index)

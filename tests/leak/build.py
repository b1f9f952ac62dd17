"""Random federations and the request story played in them, through the services.

:func:`plans` is the Hypothesis strategy: a small federation (nations of every kind, 2–4
organisations besides the secretariat, 1–3 users each with random roles, a few deactivated), and
1–4 requests for assistance, each with a random TLP, a random target stage of its lifecycle,
random routing and exclusions, offers with random outcomes, extra named members, workspace items
at random TLPs and free-text reasons. A third of the plans also hold two open engagements that
share an indicator value at two different TLPs (a correlation, told in notifications), and
some post STIX indicators over TAXII, to a federation collection (CLEAR or GREEN) or to an
engagement's collection.

:func:`build` plays a plan through the application's own write path (the services in
``vcisc.federation``, ``vcisc.assistance`` and ``vcisc.engagements``), so the data is what the
application itself would hold: timeline entries, audit records and outbox messages included.
A step a plan asks for but the rules refuse (an organisation that may not be routed, an author
who may not write TLP:RED) is adapted or skipped; the :class:`~tests.leak.world.World` records
what actually happened, with a canary token planted in every text written.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.utils import timezone
from hypothesis import strategies as st

from tests.leak.world import (
    EVERYONE_INVOLVED,
    OFFER_AUDIENCE,
    TRIAGE_AUDIENCE,
    Item,
    Kind,
    OfferRec,
    Org,
    Person,
    Rfa,
    Secret,
    World,
)
from vcisc.assistance import services as assistance
from vcisc.engagements import services as workspace
from vcisc.engagements.indicators import add_indicator
from vcisc.engagements.models import Indicator
from vcisc.federation import services as federation
from vcisc.federation import tokens
from vcisc.federation.models import (
    ApiToken,
    Capability,
    Nation,
    Organisation,
    PointOfContact,
    User,
)

__all__ = ["Plan", "PostPlan", "SharePlan", "Size", "build", "plans"]

TLPS = ("clear", "green", "amber", "amber+strict", "red")
NATION_KINDS = ("member", "member", "partner", "observer")
ORG_KINDS = ("cert", "cyber-command", "law-enforcement", "industry-partner")
ROLESETS: tuple[tuple[str, ...], ...] = (
    ("liaison",),
    ("analyst",),
    ("liaison", "analyst"),
    ("analyst",),
    ("observer",),
    ("exercise-control",),
    (),
)
SECRETARIAT_ROLESETS: tuple[tuple[str, ...], ...] = (
    ("coordinator",),
    ("admin",),
    ("coordinator", "admin"),
    ("observer",),
    (),
)
#: How far a request is taken; ``withdraw`` in the plan then withdraws it if it can be.
#: Engagements are where most of the rules meet, so the later stages are drawn more often.
STAGE_WEIGHTS = {
    "draft": 1,
    "submitted": 1,
    "triage": 1,
    "needs-info": 1,
    "rejected": 1,
    "circulated": 2,
    "expired": 1,
    "offer-accepted": 3,
    "active": 3,
    "reporting": 2,
    "closed": 2,
}
STAGES = (
    "draft",
    "submitted",
    "triage",
    "needs-info",
    "rejected",
    "circulated",
    "expired",
    "offer-accepted",
    "active",
    "reporting",
    "closed",
)
#: Stages whose engagement is open: its workspace (and TAXII collection) takes new items.
OPEN_STAGES = ("offer-accepted", "active", "reporting")
OPEN_STATES = frozenset(OPEN_STAGES)
OFFER_OUTCOMES = ("proposed", "accepted", "accepted", "declined", "withdrawn")
ITEM_KINDS = ("task", "note", "sitrep", "indicator")
CODES = ("EE", "DE", "FR", "UA", "AM", "US", "PL", "NO")
MISSING_CODE = "QZ"


@dataclass(frozen=True)
class UserPlan:
    roles: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class OrgPlan:
    nation: int
    kind: str
    users: tuple[UserPlan, ...]
    capability: bool


@dataclass(frozen=True)
class OfferPlan:
    org: int
    outcome: str
    reason: bool


@dataclass(frozen=True)
class ItemPlan:
    kind: str
    tlp: str | None  # None: the request's TLP
    author: int
    assignee: int


@dataclass(frozen=True)
class RfaPlan:
    requester: int
    tlp: str
    stage: str
    withdraw: bool
    info_round: bool
    route_to: tuple[int, ...]
    exclude: tuple[int, ...]
    exclude_nation: bool
    offers: tuple[OfferPlan, ...]
    items: tuple[ItemPlan, ...]
    members: tuple[int, ...]
    reasons: tuple[bool, ...]  # optional reasons, in the order the builder meets them
    review_tlp: str | None


@dataclass(frozen=True)
class SharePlan:
    """One indicator value added to two open engagements (indices into those the scenario
    made), at two different TLPs, by two authors: a correlation."""

    first: int
    second: int
    tlps: tuple[str, str]
    authors: tuple[int, int]


@dataclass(frozen=True)
class PostPlan:
    """A STIX indicator POSTed over TAXII: ``collection`` 0 and 1 are the federation's CLEAR and
    GREEN collections, 2 and up an open engagement's collection."""

    collection: int
    tlp: str | None  # None: the collection's default
    author: int


@dataclass(frozen=True)
class Plan:
    nations: tuple[str, ...]  # kinds; nation 0 is a member
    orgs: tuple[OrgPlan, ...]
    secretariat: tuple[UserPlan, ...]  # besides the one coordinator every federation has
    rfas: tuple[RfaPlan, ...]
    seed: int
    password_user: int  # who signs in with a password on the console (index into all users)
    sign_in: bool  # whether anyone does (a fifth of the scenarios: it is slow)
    shares: tuple[SharePlan, ...] = ()
    posts: tuple[PostPlan, ...] = ()
    #: A federation feed (TLP:GREEN) holding the values of up to two engagement indicators
    #: (the strictest first) and one of its own: feed matches.
    feed: bool = False


def _users(rolesets: tuple[tuple[str, ...], ...], *, min_size: int, max_size: int) -> Any:
    user = st.builds(
        UserPlan,
        roles=st.sampled_from(rolesets),
        active=st.sampled_from((True, True, True, True, True, False)),
    )
    return st.lists(user, min_size=min_size, max_size=max_size).map(tuple)


@st.composite
def _rfa(draw: st.DrawFn, n_orgs: int) -> RfaPlan:
    org = st.integers(0, n_orgs - 1)
    return RfaPlan(
        requester=draw(org),
        tlp=draw(st.sampled_from(TLPS)),
        stage=draw(st.sampled_from([s for s, n in STAGE_WEIGHTS.items() for _ in range(n)])),
        withdraw=draw(st.sampled_from((False, False, False, True))),
        info_round=draw(st.booleans()),
        route_to=tuple(draw(st.lists(org, min_size=1, max_size=3, unique=True))),
        exclude=tuple(draw(st.lists(org, max_size=1))),
        exclude_nation=draw(st.sampled_from((False, False, False, True))),
        offers=tuple(
            draw(
                st.lists(
                    st.builds(
                        OfferPlan,
                        org=org,
                        outcome=st.sampled_from(OFFER_OUTCOMES),
                        reason=st.booleans(),
                    ),
                    min_size=1,
                    max_size=2,
                )
            )
        ),
        items=tuple(
            draw(
                st.lists(
                    st.builds(
                        ItemPlan,
                        kind=st.sampled_from(ITEM_KINDS),
                        tlp=st.none() | st.sampled_from(TLPS),
                        author=st.integers(0, 7),
                        assignee=st.integers(0, 3),
                    ),
                    max_size=3,
                )
            )
        ),
        members=tuple(draw(st.lists(st.integers(0, 7), max_size=1))),
        reasons=tuple(draw(st.lists(st.booleans(), min_size=8, max_size=8))),
        review_tlp=draw(st.none() | st.sampled_from(TLPS)),
    )


@dataclass(frozen=True)
class Size:
    """Upper bounds of a scenario (the profile chooses; see hunt.py)."""

    orgs: int = 3
    users: int = 2
    secretariat_users: int = 1
    rfas: int = 2


@st.composite
def plans(draw: st.DrawFn, size: Size = Size()) -> Plan:
    """A small random federation and what happens in it (see the module docstring)."""
    n_nations = draw(st.integers(2, 3))
    nations = ("member", *(draw(st.sampled_from(NATION_KINDS)) for _ in range(n_nations - 1)))
    n_orgs = draw(st.integers(2, size.orgs))
    linked = draw(st.sampled_from((False, False, True)))  # two engagements share an indicator
    orgs = tuple(
        OrgPlan(
            nation=draw(st.integers(0, n_nations - 1)),
            kind=draw(st.sampled_from(ORG_KINDS)),
            users=draw(_users(ROLESETS, min_size=1, max_size=size.users)),
            capability=draw(st.booleans()),
        )
        for _ in range(n_orgs)
    )
    secretariat = draw(_users(SECRETARIAT_ROLESETS, min_size=0, max_size=size.secretariat_users))
    rfas = draw(st.lists(_rfa(n_orgs), min_size=2 if linked else 1, max_size=max(size.rfas, 2)))
    shares: tuple[SharePlan, ...] = ()
    if linked:
        # The first two requests reach an open engagement, which the value links: org 0 asks,
        # org 1 (of the member nation, so never an observer's) is routed and its offer
        # accepted, with nothing excluded. A stage alone did not get there: drawn routes,
        # exclusions and offers left most such requests in triage or circulated.
        orgs = (orgs[0], replace(orgs[1], nation=0), *orgs[2:])
        rfas[:2] = [
            replace(
                r,
                requester=0,
                stage=draw(st.sampled_from(OPEN_STAGES)),
                withdraw=False,
                route_to=(1,),
                exclude=(),
                exclude_nation=False,
                offers=(OfferPlan(0, "accepted", r.offers[0].reason),),
            )
            for r in rfas[:2]
        ]
        first = draw(st.sampled_from(TLPS))
        second = draw(st.sampled_from([t for t in TLPS if t != first]))
        authors = (draw(st.integers(0, 7)), draw(st.integers(0, 7)))
        shares = (SharePlan(0, 1, (first, second), authors),)
    posts = draw(
        st.lists(
            st.builds(
                PostPlan,
                collection=st.integers(0, 3),
                tlp=st.none() | st.sampled_from(TLPS),
                author=st.integers(0, 7),
            ),
            max_size=2,
        )
    )
    return Plan(
        nations=nations,
        orgs=orgs,
        secretariat=secretariat,
        rfas=tuple(rfas),
        seed=draw(st.integers(0, 2**32 - 1)),
        password_user=draw(st.integers(0, 30)),
        sign_in=draw(st.sampled_from((True, False, False, False, False))),
        shares=shares,
        posts=tuple(posts),
        feed=draw(st.sampled_from((False, False, True))),
    )


# --- building -----------------------------------------------------------------------------------


@dataclass
class Built:
    """The world, plus the Django objects the checker needs to act (users, their secrets)."""

    world: World
    users: dict[int, User]
    api_tokens: dict[int, str] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.world = World()
        self.users: dict[int, User] = {}
        self.org_ids: list[int] = []
        self.coordinator: User | None = None
        self.deactivated: list[User] = []
        self._tokens: set[str] = set()

    # --- canaries -------------------------------------------------------------------------------

    def token(self) -> str:
        """A fresh canary: ``qz`` and ten random lower-case letters and digits."""
        alphabet = string.ascii_lowercase + string.digits
        while True:
            text = "qz" + "".join(self.rng.choice(alphabet) for _ in range(10))
            if text not in self._tokens:
                self._tokens.add(text)
                return text

    def plant(self, kind: Kind, what: str, **where: Any) -> str:
        return self.world.add_secret(Secret(self.token(), kind, what, **where))

    # --- the federation ---------------------------------------------------------------------------

    def federation(self) -> None:
        """The directory, written directly (one query per table): the services would add an
        audit record per entry and take a third of the scenario's time. The rows are what the
        services would write (the models' constraints hold them to it)."""
        codes = self.rng.sample(CODES, len(self.plan.nations))
        Nation.objects.bulk_create(
            Nation(code=code, name=f"Nation {code}", kind=kind)
            for code, kind in zip(codes, self.plan.nations, strict=True)
        )
        self.world.nations.update(zip(codes, self.plan.nations, strict=True))
        nations = dict(Nation.objects.values_list("code", "pk"))
        names = [self.token() for _ in range(len(self.plan.orgs) + 1)]
        orgs = Organisation.objects.bulk_create(
            [Organisation(name=f"Secretariat {names[0]}", kind="secretariat")]
            + [
                Organisation(name=f"Org {tok}", kind=op.kind, nation_id=nations[codes[op.nation]])
                for tok, op in zip(names[1:], self.plan.orgs, strict=True)
            ]
        )
        sec = orgs[0]
        self._org(sec.pk, sec.name, "secretariat", None, None, names[0])
        for org, tok, op in zip(orgs[1:], names[1:], self.plan.orgs, strict=True):
            code = codes[op.nation]
            self._org(org.pk, org.name, op.kind, code, self.world.nations[code], tok)
            self.org_ids.append(org.pk)
        contacts = PointOfContact.objects.bulk_create(
            PointOfContact(
                organisation=org,
                name=f"Desk {i}",
                email=f"desk{i}@contacts.example",
                languages=["en"],
            )
            for i, org in enumerate(orgs[1:])
        )
        self.world.contacts += [c.pk for c in contacts]
        caps = Capability.objects.bulk_create(
            Capability(
                organisation=org,
                service_type=self.rng.choice(["incident-response", "malware-analysis"]),
                languages=["en"],
                max_concurrent=3,
            )
            for org, op in zip(orgs[1:], self.plan.orgs, strict=True)
            if op.capability
        )
        self.world.capabilities += [c.pk for c in caps]
        people: list[tuple[int, tuple[str, ...], bool, str]] = [
            (sec.pk, ("coordinator",), True, "coordinator")
        ]
        people += [
            (sec.pk, up.roles, up.active, f"secretariat user {i}")
            for i, up in enumerate(self.plan.secretariat)
        ]
        people += [
            (org.pk, up.roles, up.active, f"org {i} user {j}")
            for i, (org, op) in enumerate(zip(orgs[1:], self.plan.orgs, strict=True))
            for j, up in enumerate(op.users)
        ]
        made = User.objects.bulk_create(self._new_user(*p) for p in people)
        for user, (_, _, active, label) in zip(made, people, strict=True):
            self._record_user(user, label, deactivate=not active)
        self.coordinator = made[0]

    def _new_user(self, org_id: int, roles: tuple[str, ...], *_: Any) -> User:
        email = f"{self.token()}@people.example"
        user = User(
            email=email,
            username=email,
            organisation_id=org_id,
            roles=list(roles),
            is_staff="admin" in roles,
        )
        user.set_unusable_password()
        return user

    def _record_user(self, user: User, label: str, *, deactivate: bool = False) -> None:
        tok = user.email.split("@")[0]
        self.users[user.pk] = user
        self.world.people[user.pk] = Person(
            user.pk, user.email, user.organisation_id, frozenset(user.roles), True, tok, label
        )
        self.world.add_secret(Secret(tok, Kind.USER_EMAIL, user.email, user_id=user.pk))
        if deactivate:
            self.deactivated.append(user)

    def _org(
        self, pk: int, name: str, kind: str, code: str | None, nkind: str | None, tok: str
    ) -> None:
        self.world.orgs[pk] = Org(pk, name, kind, code, nkind, tok)
        self.world.add_secret(Secret(tok, Kind.ORG_NAME, name, org_id=pk))

    def user(self, org_id: int, roles: tuple[str, ...], label: str) -> User:
        """One more (active) user, written as the directory is (see :meth:`federation`)."""
        user = self._new_user(org_id, roles)
        user.save()
        self._record_user(user, label)
        return user

    def api_tokens(self) -> dict[int, str]:
        """A bearer token for every user (issued before anyone is deactivated), written as
        ``federation.create_token`` would, in one query."""
        now = timezone.now()
        issued, rows = {}, []
        for user in self.users.values():
            new = tokens.new_token()
            rows.append(
                ApiToken(
                    user=user,
                    key_id=new.key_id,
                    digest=tokens.digest(new.secret),
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            issued[user.pk] = new.text
            self.world.tokens.append(new.key_id)
        ApiToken.objects.bulk_create(rows)
        return issued

    def finish_users(self) -> None:
        """Deactivate who the plan says (last, so that their earlier work stays valid)."""
        for user in self.deactivated:
            user.refresh_from_db()
            federation.deactivate(None, user)
            self.world.people[user.pk].active = False

    # --- who can act ----------------------------------------------------------------------------

    def members_of(self, org_id: int, *roles: str) -> list[User]:
        return [
            u
            for u in self.users.values()
            if u.organisation_id == org_id and any(u.has_role(r) for r in roles)
        ]

    def liaison(self, org_id: int) -> User:
        """An active liaison officer of the organisation (one is added if it has none)."""
        found = self.members_of(org_id, "liaison")
        if found:
            return found[0]
        return self.user(org_id, ("liaison",), f"liaison added to org #{org_id}")

    def filing_orgs(self) -> list[int]:
        return [
            pk for pk in self.org_ids if self.world.orgs[pk].nation_kind in ("member", "partner")
        ]

    # --- one request's story ------------------------------------------------------------------

    def reason(self, rfa: Rfa, plan: RfaPlan, n: int, audience: str, **where: Any) -> str:
        if not plan.reasons[n % len(plan.reasons)]:
            return ""
        return self.plant(
            Kind.REASON, "reason", rfa_id=rfa.id, audience=audience, tlp=rfa.tlp, **where
        )

    def request(self, plan: RfaPlan) -> None:
        filers = self.filing_orgs()
        if not filers:
            return
        requester_id = filers[plan.requester % len(filers)]
        liaison = self.liaison(requester_id)
        others = [pk for pk in self.org_ids if pk != requester_id]
        excluded = {others[i % len(others)] for i in plan.exclude} if others else set()
        excluded_nations: list[str] = []
        if plan.exclude_nation:
            foreign = sorted(
                {self.world.orgs[pk].nation_code or "" for pk in others}
                - {self.world.orgs[requester_id].nation_code or ""}
            )
            excluded_nations = foreign[:1]
        c = self.token
        title, entity, desc, impact, measures, support, caveats, vendor = (c() for _ in range(8))
        data = {
            "title": f"Incident {title}",
            "affected_entity": f"Entity {entity}",
            "description": f"What happened: {desc}",
            "rsit_class": "malicious-code",
            "rsit_type": "infected-system",
            "sector": self.rng.choice(["energy/electricity", "health", "banking"]),
            "severity": self.rng.randint(0, 5),
            "services_needed": ["incident-response"],
            "urgency": "hours",
            "tlp": plan.tlp,
            "impact": f"Impact {impact}",
            "measures_taken": f"Measures {measures}",
            "other_support": f"Support {support}",
            "handling_caveats": f"Caveats {caveats}",
            "excluded_organisations": sorted(excluded),
            "excluded_nations": excluded_nations,
            "languages": ["en"],
            "ics_vendors": [f"vendor-{vendor}"],
        }
        submit = plan.stage != "draft"
        made = assistance.create_rfa(liaison, data, submit=submit)
        rfa = Rfa(
            made.pk,
            made.reference,
            requester_id,
            plan.tlp,
            made.state,
            submitted=submit,
            excluded=set(excluded),
        )
        self.world.rfas[rfa.id] = rfa
        for tok, what in (
            (title, "title"),
            (entity, "affected entity"),
            (desc, "description"),
            (impact, "impact"),
            (measures, "measures taken"),
            (support, "other support"),
            (caveats, "handling caveats"),
        ):
            self.world.add_secret(Secret(tok, Kind.RFA_CONTENT, what, rfa_id=rfa.id, tlp=rfa.tlp))
        self.world.add_secret(
            Secret(vendor, Kind.RFA_META, "ICS vendor", rfa_id=rfa.id, tlp=rfa.tlp)
        )
        self.story(plan, rfa, liaison, excluded, set(excluded_nations))
        if plan.withdraw and rfa.state not in ("closed", "rejected", "expired", "withdrawn"):
            why = self.reason(rfa, plan, 7, EVERYONE_INVOLVED)
            rfa.state = assistance.transition(liaison, rfa.id, "withdraw", reason=why).state
            for offer in self.world.offers.values():
                if offer.rfa_id == rfa.id and offer.state == "proposed":
                    offer.state = "declined"

    def move(self, actor: User, rfa: Rfa, action: str, reason: str = "") -> None:
        rfa.state = assistance.transition(actor, rfa.id, action, reason=reason).state

    def story(
        self, plan: RfaPlan, rfa: Rfa, liaison: User, excluded: set[int], ex_nations: set[str]
    ) -> None:
        stage = STAGES.index(plan.stage)
        coord = self.coordinator
        assert coord is not None
        if stage < STAGES.index("triage"):
            return
        self.move(coord, rfa, "start-triage", self.reason(rfa, plan, 0, EVERYONE_INVOLVED))
        if plan.info_round or plan.stage == "needs-info":
            why = self.plant(
                Kind.REASON,
                "request-info reason",
                rfa_id=rfa.id,
                audience=TRIAGE_AUDIENCE,
                tlp=rfa.tlp,
            )
            self.move(coord, rfa, "request-info", why)
            if plan.stage == "needs-info":
                return
            self.move(liaison, rfa, "provide-info", self.reason(rfa, plan, 1, TRIAGE_AUDIENCE))
        if plan.stage == "triage":
            return
        if plan.stage == "rejected":
            why = self.plant(
                Kind.REASON,
                "rejection reason",
                rfa_id=rfa.id,
                audience=TRIAGE_AUDIENCE,
                tlp=rfa.tlp,
            )
            self.move(coord, rfa, "reject", why)
            return
        routable = [self.org_ids[i % len(self.org_ids)] for i in plan.route_to]
        routable = [
            pk
            for pk in dict.fromkeys(routable)
            if pk != rfa.requester_id
            and pk not in excluded
            and self.world.orgs[pk].nation_kind != "observer"
            and self.world.orgs[pk].nation_code not in ex_nations
        ]
        if not routable:  # the plan picked no one who may be asked: ask the first who may
            routable = [
                pk
                for pk in self.org_ids
                if pk != rfa.requester_id
                and pk not in excluded
                and self.world.orgs[pk].nation_kind != "observer"
                and self.world.orgs[pk].nation_code not in ex_nations
            ][:1]
        if not routable:
            return
        result = assistance.route(coord, rfa.id, routable)
        rfa.state = result.rfa.state
        rfa.routed |= {r.organisation_id for r in result.routed}
        offers: list[tuple[OfferPlan, OfferRec, User]] = []
        for op in plan.offers:
            org_id = routable[op.org % len(routable)]
            if any(o.org_id == org_id for _, o, _ in offers):
                continue
            offerer = self.liaison(org_id)
            scope, conditions = self.token(), self.token()
            now = timezone.now()
            made = assistance.create_offer(
                offerer,
                rfa.id,
                {
                    "scope": f"Scope {scope}",
                    "conditions": f"Conditions {conditions}",
                    "team_size": 2,
                    "available_from": now,
                    "available_until": now + timedelta(days=5),
                    "services": ["incident-response"],
                },
            )
            rec = OfferRec(made.pk, rfa.id, org_id)
            self.world.offers[rec.id] = rec
            for tok, what in ((scope, "offer scope"), (conditions, "offer conditions")):
                self.world.add_secret(
                    Secret(tok, Kind.OFFER_TEXT, what, rfa_id=rfa.id, offer_id=rec.id, tlp=rfa.tlp)
                )
            offers.append((op, rec, offerer))
        if plan.stage == "expired":
            self.move(coord, rfa, "expire", self.reason(rfa, plan, 2, EVERYONE_INVOLVED))
            for _, rec, _ in offers:
                rec.state = "declined"
            return
        if stage < STAGES.index("offer-accepted") or not offers:
            self.settle_offers(plan, rfa, liaison, offers, accept=False)
            return
        self.settle_offers(plan, rfa, liaison, offers, accept=True)
        if rfa.engagement_id is None:
            return
        self.name_members(plan, rfa)
        self.add_items(plan, rfa)
        if stage >= STAGES.index("active"):
            actor = coord if plan.reasons[3] else liaison
            self.move(actor, rfa, "activate", self.reason(rfa, plan, 4, EVERYONE_INVOLVED))
            for _, rec, _ in offers:
                if rec.state == "accepted":
                    rec.state = "active"
        if stage >= STAGES.index("reporting"):
            self.move(liaison, rfa, "report", self.reason(rfa, plan, 5, EVERYONE_INVOLVED))
        if stage >= STAGES.index("closed"):
            self.review(plan, rfa, liaison)
            self.move(liaison, rfa, "close")
            for _, rec, _ in offers:
                if rec.state == "active":
                    rec.state = "completed"

    def settle_offers(
        self,
        plan: RfaPlan,
        rfa: Rfa,
        liaison: User,
        offers: list[tuple[OfferPlan, OfferRec, User]],
        *,
        accept: bool,
    ) -> None:
        outcomes = [op.outcome for op, _, _ in offers]
        if accept and "accepted" not in outcomes:
            outcomes[0] = "accepted"
        for (op, rec, offerer), outcome in zip(offers, outcomes, strict=True):
            if outcome == "accepted" and not accept:
                continue
            if outcome == "proposed":
                continue
            why = ""
            if op.reason:
                why = self.plant(
                    Kind.REASON,
                    f"reason the offer was {outcome}",
                    rfa_id=rfa.id,
                    offer_id=rec.id,
                    audience=OFFER_AUDIENCE,
                    tlp=rfa.tlp,
                )
            if outcome == "withdrawn":
                assistance.offer_action(offerer, rec.id, "withdraw", reason=why)
                rec.state = "withdrawn"
                continue
            action = "accept" if outcome == "accepted" else "decline"
            made = assistance.offer_action(liaison, rec.id, action, reason=why)
            rec.state = made.state
            if action == "accept":
                rfa.state = made.rfa.state
                eng = made.rfa.engagement
                rfa.engagement_id = eng.pk
                rfa.participants |= {rfa.requester_id, rec.org_id}
                rfa.members |= {made.rfa.created_by_id, liaison.pk, offerer.pk}
                self.world.forget()

    def name_members(self, plan: RfaPlan, rfa: Rfa) -> None:
        parts = sorted(rfa.participants)
        for pick in plan.members:
            org_id = parts[pick % len(parts)]
            colleagues = [
                u for u in self.members_of(org_id, *ROLE_NAMES) if u.pk not in rfa.members
            ]
            if not colleagues:
                continue
            who = colleagues[pick % len(colleagues)]
            assert rfa.engagement_id is not None
            workspace.add_member(self.liaison(org_id), rfa.engagement_id, who.pk)
            rfa.members.add(who.pk)

    def writers(self, rfa: Rfa, tlp: str) -> list[User]:
        """Who may write a workspace item at ``tlp``: participants' liaison officers and
        analysts; for TLP:RED the named members among them."""
        found = sorted(
            (u for pk in rfa.participants for u in self.members_of(pk, "liaison", "analyst")),
            key=lambda u: u.pk,
        )
        return [u for u in found if tlp != "red" or u.pk in rfa.members]

    def add_items(self, plan: RfaPlan, rfa: Rfa) -> None:
        assert rfa.engagement_id is not None
        parts = sorted(rfa.participants)
        for ip in plan.items:
            tlp = ip.tlp or rfa.tlp
            able = self.writers(rfa, tlp)
            if not able:
                continue
            author = able[ip.author % len(able)]
            a, b, c = self.token(), self.token(), self.token()
            data: dict[str, Any] = {"tlp": tlp}
            if ip.kind == "task":
                data |= {
                    "title": f"Task {a}",
                    "description": f"Do {b}",
                    "assignee_id": parts[ip.assignee % len(parts)],
                }
                made: Any = workspace.add_task(author, rfa.engagement_id, data)
                self.world.task_ids.append(made.pk)
                texts = ((a, "task title"), (b, "task description"))
            elif ip.kind == "note":
                made = workspace.add_note(author, rfa.engagement_id, data | {"body": f"Note {a}"})
                texts = ((a, "note body"),)
            elif ip.kind == "indicator":
                data |= {"value": f"{a}.example", "type": "domain", "description": f"Seen {b}"}
                made = add_indicator(author, rfa.engagement_id, data)
                texts = ((a, "indicator value"), (b, "indicator description"))
            else:
                data |= {"summary": f"Sum {a}", "actions_taken": f"Did {b}", "next_steps": f"{c}"}
                made = workspace.add_sitrep(author, rfa.engagement_id, data)
                texts = ((a, "SITREP summary"), (b, "SITREP actions"), (c, "SITREP next steps"))
            key = len(self.world.items) + 1  # items of different kinds share ids: key them apart
            self.world.items[key] = Item(
                key, ip.kind, rfa.id, tlp, author.pk, author.organisation_id or 0
            )
            if ip.kind == "indicator":
                self.world.indicators[made.pk] = key
            for tok, what in texts:
                self.world.add_secret(
                    Secret(
                        tok, Kind.ITEM, f"{what} #{made.pk}", rfa_id=rfa.id, item_id=key, tlp=tlp
                    )
                )

    # --- after the stories: correlations and TAXII ------------------------------------------

    def open_engagements(self) -> list[Rfa]:
        return [
            r
            for r in self.world.rfas.values()
            if r.engagement_id is not None and r.state in OPEN_STATES
        ]

    def share(self, sp: SharePlan) -> None:
        """The same indicator value in two open engagements, at two TLPs: the second add
        records the correlation and tells whoever may know both sides."""
        engs = self.open_engagements()
        if len(engs) < 2:
            return
        first = engs[sp.first % len(engs)]
        second = engs[sp.second % len(engs)]
        if second is first:
            second = next(r for r in engs if r is not first)
        value = self.token()
        keys: list[int] = []
        for rfa, tlp, pick in zip((first, second), sp.tlps, sp.authors, strict=True):
            able = self.writers(rfa, tlp)
            if not able:
                continue
            author = able[pick % len(able)]
            assert rfa.engagement_id is not None
            note = self.token()
            made = add_indicator(
                author,
                rfa.engagement_id,
                {"value": f"{value}.example", "type": "domain", "tlp": tlp, "description": note},
            )
            key = len(self.world.items) + 1
            self.world.items[key] = Item(
                key, "indicator", rfa.id, tlp, author.pk, author.organisation_id or 0
            )
            self.world.indicators[made.pk] = key
            self.world.add_secret(
                Secret(
                    note,
                    Kind.ITEM,
                    f"shared indicator's description #{made.pk}",
                    rfa_id=rfa.id,
                    item_id=key,
                    tlp=tlp,
                )
            )
            keys.append(key)
        if not keys:
            return
        tlps = [self.world.items[k].tlp for k in keys]
        self.world.add_secret(
            Secret(
                value,
                Kind.SHARED_VALUE,
                "indicator value in two engagements" if len(keys) == 2 else "indicator value",
                rfa_id=self.world.items[keys[0]].rfa_id,
                item_id=keys[0],
                other_item_id=keys[1] if len(keys) == 2 else None,
                tlp=min(tlps, key=TLPS.index),  # the value is known at the laxer of the two
            )
        )
        if len(keys) == 2:
            self.world.correlations.append((keys[0], keys[1]))

    def post(self, pp: PostPlan) -> None:
        """One STIX indicator POSTed to a TAXII collection through the TAXII store (its write
        path: the status resource, the audit record, the engagement's indicators or the
        federation's feed)."""
        from vcisc.sharing.taxii.discovery import max_content_length
        from vcisc.sharing.taxii.scopes import FEDERATION_SCOPES, get_collection
        from vcisc.sharing.taxii.store import add_objects
        from vcisc.tlp import STIX_TLP2_IDS, Tlp

        rfa: Rfa | None = None
        if pp.collection < 2:
            cid, scope = sorted(FEDERATION_SCOPES.items(), key=lambda kv: kv[1].rank)[pp.collection]
            tlp = pp.tlp if pp.tlp in TLPS[: TLPS.index(scope.value) + 1] else scope.value
            able = [
                u
                for u in self.users.values()
                if (u.has_role("liaison") or u.has_role("analyst"))
                and self.world.orgs[u.organisation_id or 0].nation_kind in ("member", "partner")
            ] + ([self.coordinator] if self.coordinator is not None else [])
        else:
            engs = self.open_engagements()
            if not engs:
                return
            rfa = engs[(pp.collection - 2) % len(engs)]
            assert rfa.engagement_id is not None
            cid, tlp = rfa.engagement_id, pp.tlp or rfa.tlp
            able = self.writers(rfa, tlp)
        if not able:
            return
        author = able[pp.author % len(able)]
        assert author is not None
        value, name, note = self.token(), self.token(), self.token()
        stix = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{self.uuid4()}",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": f"Indicator {name}",
            "description": f"Seen {note}",
            "pattern": f"[domain-name:value = '{value}.example']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
            "object_marking_refs": [STIX_TLP2_IDS[Tlp(tlp)]],
        }
        body = json.dumps({"objects": [stix]}).encode()
        status = add_objects(
            author, get_collection(author, str(cid)), body, max_bytes=max_content_length()
        )
        assert status.failure_count == 0, status.failures
        texts = ((value, "value"), (name, "name"), (note, "description"))
        if rfa is None:
            if cid not in self.world.collections:
                self.world.collections.append(cid)
            for tok, what in texts:
                self.world.add_secret(
                    Secret(tok, Kind.FEDERATION_OBJECT, f"TAXII object's {what}", tlp=tlp)
                )
            return
        key = len(self.world.items) + 1
        self.world.items[key] = Item(
            key, "TAXII object", rfa.id, tlp, author.pk, author.organisation_id or 0
        )
        assert rfa.engagement_id is not None
        for pk in Indicator.objects.filter(
            engagement_id=rfa.engagement_id, value=f"{value}.example"
        ).values_list("pk", flat=True):
            self.world.indicators[pk] = key
        for tok, what in texts:
            self.world.add_secret(
                Secret(
                    tok, Kind.ITEM, f"TAXII object's {what}", rfa_id=rfa.id, item_id=key, tlp=tlp
                )
            )

    def feed(self) -> None:
        """A TLP:GREEN federation feed, uploaded by the coordinator, whose one event holds the
        values of up to two engagement indicators (the strictest first: a match on a TLP:AMBER
        or RED indicator must reach only who may read that indicator) and a value of its own.
        The matched values are in the feed, which every federation reader reads: their canaries
        become ``in_feed``; what stays need-to-know is the match (the indicator's id, its
        engagement)."""
        from vcisc.feeds.services import create_feed, import_feed_content

        if self.coordinator is None:
            return
        ranked = sorted(
            Indicator.objects.filter(pk__in=list(self.world.indicators)).values_list("pk", "value"),
            key=lambda row: (
                -TLPS.index(self.world.items[self.world.indicators[row[0]]].tlp),
                str(row[0]),
            ),
        )
        held: list[str] = []  # distinct values (a shared value is held twice)
        for _, value in ranked:
            if value not in held and len(held) < 2:
                held.append(value)
        name, info, own = self.token(), self.token(), self.token()
        feed = create_feed(self.coordinator, {"name": f"Feed {name}", "tlp": "green"})
        event_uuid = self.uuid4()
        values = [*held, f"{own}.example"]
        event = {
            "Event": {
                "uuid": event_uuid,
                "info": f"Event {info}",
                "date": "2026-01-01",
                "distribution": 1,
                "threat_level_id": 2,
                "analysis": 2,
                "Tag": [{"name": "tlp:green"}],
                "Attribute": [
                    {
                        "uuid": self.uuid4(),
                        "type": "domain",
                        "category": "Network activity",
                        "value": value,
                        "to_ids": True,
                        "distribution": 1,
                    }
                    for value in values
                ],
            }
        }
        manifest = {event_uuid: {"info": f"Event {info}", "timestamp": "1767225600"}}
        result = import_feed_content(
            self.coordinator,
            feed.pk,
            manifest,
            lambda uuid: json.dumps(event) if uuid == event_uuid else None,
        )
        assert result.indicators == len(values), result.report
        for tok, what in ((name, "feed's name"), (info, "feed event's info"), (own, "value")):
            self.world.add_secret(Secret(tok, Kind.FEDERATION_OBJECT, f"feed {what}", tlp="green"))
        for value in held:
            tok = value.removesuffix(".example")
            self.world.secrets[tok] = replace(self.world.secrets[tok], in_feed=True)
        self.world.feed_matches += result.matches

    def uuid4(self) -> str:
        """A random UUID (version 4) from the plan's seed: the same plan, the same ids."""
        return str(UUID(int=self.rng.getrandbits(128), version=4))

    def review(self, plan: RfaPlan, rfa: Rfa, liaison: User) -> None:
        assert rfa.engagement_id is not None
        tlp = plan.review_tlp or rfa.tlp
        if tlp == "red" and liaison.pk not in rfa.members:
            tlp = "amber"
        a, b, c = self.token(), self.token(), self.token()
        workspace.submit_review(
            liaison,
            rfa.engagement_id,
            {
                "what_helped": f"Help {a}",
                "what_did_not": f"Not {b}",
                "lessons": f"Lessons {c}",
                "tlp": tlp,
            },
        )
        key = len(self.world.items) + 1
        self.world.items[key] = Item(key, "review", rfa.id, tlp, liaison.pk, rfa.requester_id)
        for tok, what in ((a, "what helped"), (b, "what did not"), (c, "lessons")):
            self.world.add_secret(
                Secret(tok, Kind.ITEM, f"review: {what}", rfa_id=rfa.id, item_id=key, tlp=tlp)
            )

    def passwords(self) -> dict[int, str]:
        """One active user signs in to the console with a password (a canary too)."""
        if not self.plan.sign_in:
            return {}
        gone = {u.pk for u in self.deactivated}
        active = [u for u in self.users.values() if u.pk not in gone]
        if not active:
            return {}
        user = active[self.plan.password_user % len(active)]
        password = f"Pw-{self.token()}-Leak9"
        user.set_password(password)
        user.save(update_fields=["password"])
        self.world.add_secret(Secret(password.split("-")[1], Kind.SECRET, "password"))
        return {user.pk: password}


ROLE_NAMES = ("liaison", "analyst", "coordinator", "exercise-control", "observer", "admin")


def build(plan: Plan) -> Built:
    """Play ``plan`` through the services (inside the caller's transaction)."""
    b = _Builder(plan)
    b.federation()
    for rp in plan.rfas:
        b.request(rp)
    for sp in plan.shares:
        b.share(sp)
    for pp in plan.posts:
        b.post(pp)
    if plan.feed:
        b.feed()
    passwords = b.passwords()
    tokens = b.api_tokens()
    b.finish_users()
    b.world.forget()
    return Built(b.world, b.users, tokens, passwords, b.rng)

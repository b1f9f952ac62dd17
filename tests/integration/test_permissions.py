"""The permission matrix holds: every cell of docs/permissions.md, performed by its persona.

For each row a scenario is built with the ``federation`` fixture — a request taken through its
story to the state the row is judged in, with a requester (CERT-EE), a routed organisation
(ANSSI), a participant (CERT-Bund, whose offer was accepted) and a named member — and then every
persona tries the action through the service (writes) or the API (reads). Each write attempt runs
in a savepoint that is rolled back, so the next persona meets the same scenario. Allowed means it
succeeded and wrote an audit record; a refusal must be the cell's error, with nothing written.

The matrix itself (vcisc.permissions) is built from the code; other tests here make sure that
every service function that acts for a user has a row, that every row is enforced here, and that
docs/permissions.md is what the code generates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import Api, Federation, rfa_body
from vcisc import permissions
from vcisc.assistance import services as rfa_services
from vcisc.assistance.lifecycle import Action, OfferAction, RfaState, allowed_actions
from vcisc.assistance.models import Offer, RequestForAssistance, TimelineEntry
from vcisc.audit.models import AuditRecord
from vcisc.engagements import indicators
from vcisc.engagements import services as eng_services
from vcisc.engagements.models import Engagement
from vcisc.errors import DomainError
from vcisc.federation import services as fs
from vcisc.federation.models import (
    ApiToken,
    Capability,
    Nation,
    Organisation,
    PointOfContact,
    User,
)
from vcisc.notify.models import OutboxMessage
from vcisc.permissions import Row, Verdict, matrix

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
REGENERATE = "python -m vcisc.permissions > docs/permissions.md"

#: The fixture user (or the scenario's own) each persona is, and its organisation.
USER_OF = {
    "requester": "ee",
    "requester_analyst": "ee_analyst",
    "routed": "fr",
    "participant": "de",
    "participant_analyst": "de_analyst",
    "member": "member",
    "coordinator": "coordinator",
    "admin": "admin",
    "other": "ua",
    "observer": "am",
}
ORG_OF = {
    "requester": "ee",
    "requester_analyst": "ee",
    "routed": "fr",
    "participant": "de",
    "participant_analyst": "de",
    "member": "de",
    "coordinator": "secretariat",
    "admin": "secretariat",
    "other": "ua",
    "observer": "am",
}
PERSONAS = [p.key for p in permissions.PERSONAS]

_BY_STATUS = {
    403: Verdict.FORBIDDEN,
    404: Verdict.HIDDEN,
    409: Verdict.CONFLICT,
    422: Verdict.INVALID,
}


# --- scenarios ----------------------------------------------------------------------------------


@dataclass
class Scenario:
    fed: Federation
    users: dict[str, User]
    apis: dict[str, Api]
    rfa: RequestForAssistance | None = None
    offers: dict[str, Offer] = field(default_factory=dict)
    engagement_id: int | None = None
    task_id: int | None = None
    red_note_id: int | None = None

    def org(self, key: str) -> Organisation:
        return self.fed.orgs[key]

    @property
    def rfa_id(self) -> int:
        assert self.rfa is not None
        return self.rfa.pk

    @property
    def eng_id(self) -> int:
        assert self.engagement_id is not None
        return self.engagement_id


def _offer_data() -> dict[str, Any]:
    start = timezone.now()
    return {
        "scope": "Remote incident response team",
        "team_size": 2,
        "available_from": start,
        "available_until": start + timedelta(days=7),
        "services": ["incident-response"],
        "remote": True,
    }


def build(
    fed: Federation,
    stage: RfaState | None,
    *,
    tlp: str = "amber",
    fr_offer: bool = True,
    reviewed: bool = False,
) -> Scenario:
    """The federation with a named-member-to-be, and a request taken to ``stage``:
    routed to CERT-Bund and ANSSI, both offering (ANSSI unless ``fr_offer`` is false), CERT-Bund's
    offer accepted, its analyst ``member`` named; from ACTIVE on, an AMBER task and a RED note."""
    member = fs.create_user(
        None,
        email="member@cert-bund.de.example",
        organisation_id=fed.orgs["de"].pk,
        roles=["analyst"],
    )
    _, token = fs.create_token(None, member, days=1)
    users = {p: (member if u == "member" else fed.users[u]) for p, u in USER_OF.items()}
    apis = {p: (Api(member, token) if u == "member" else fed.apis[u]) for p, u in USER_OF.items()}
    scn = Scenario(fed, users, apis)
    if stage is None:
        return scn
    u = fed.users
    rfa = rfa_services.create_rfa(u["ee"], rfa_body(tlp=tlp))
    scn.rfa = rfa
    if stage == RfaState.DRAFT:
        return scn
    rfa_services.transition(u["ee"], rfa.pk, "submit")
    if stage == RfaState.SUBMITTED:
        return scn
    rfa_services.transition(u["coordinator"], rfa.pk, "start-triage")
    if stage == RfaState.TRIAGE:
        return scn
    if stage == RfaState.NEEDS_INFO:
        rfa_services.transition(u["coordinator"], rfa.pk, "request-info", reason="which RTUs?")
        return scn
    rfa_services.route(u["coordinator"], rfa.pk, [fed.orgs["de"].pk, fed.orgs["fr"].pk])
    scn.offers["de"] = rfa_services.create_offer(u["de"], rfa.pk, _offer_data())
    if fr_offer:
        scn.offers["fr"] = rfa_services.create_offer(u["fr"], rfa.pk, _offer_data())
    if stage == RfaState.CIRCULATED:
        return scn
    rfa_services.offer_action(u["ee"], scn.offers["de"].pk, "accept")
    eng = Engagement.objects.get(rfa=rfa)
    scn.engagement_id = eng.pk
    eng_services.add_member(u["de"], eng.pk, member.pk)
    if stage == RfaState.OFFER_ACCEPTED:
        return scn
    rfa_services.transition(u["ee"], rfa.pk, "activate")
    task = eng_services.add_task(
        u["de"],
        eng.pk,
        {"title": "Image the HMI", "assignee_id": fed.orgs["de"].pk, "tlp": "amber"},
    )
    note = eng_services.add_note(u["de"], eng.pk, {"body": "Implant hash", "tlp": "red"})
    scn.task_id, scn.red_note_id = task.pk, note.pk
    if stage == RfaState.ACTIVE:
        return scn
    rfa_services.transition(u["ee"], rfa.pk, "report")
    if reviewed:
        eng_services.submit_review(u["ee"], eng.pk, {"what_helped": "IR", "lessons": "Drill"})
    assert stage == RfaState.REPORTING, stage
    return scn


#: Rows whose scenario differs from "the request in the row's state".
SCENARIO: dict[str, dict[str, Any]] = {
    "rfa.close": {"reviewed": True},
    "offer.create": {"fr_offer": False},
    "read.content.red": {"tlp": "red"},
}


# --- performing a write -------------------------------------------------------------------------


class _Undo(Exception):
    def __init__(self, changed: bool) -> None:
        self.changed = changed


def _counts() -> tuple[int, int, int]:
    return (
        AuditRecord.objects.count(),
        TimelineEntry.objects.count(),
        OutboxMessage.objects.count(),
    )


def attempt(action: Callable[[], object]) -> tuple[Verdict, bool]:
    """Perform ``action`` in a savepoint that is always rolled back; what it got, and whether it
    wrote anything (an audit record, a timeline entry, a notification)."""
    before = _counts()
    try:
        with transaction.atomic():
            action()
            raise _Undo(_counts() != before)
    except _Undo as undo:
        return Verdict.ALLOWED, undo.changed
    except DomainError as exc:
        return _BY_STATUS[exc.status], _counts() != before


#: A write probe: given the scenario, the persona and whether to act on the persona's own object
#: (else the row's usual target, or someone else's), the action to attempt.
WriteProbe = Callable[[Scenario, str, bool], Callable[[], object]]
ReadProbe = Callable[[Scenario, str], Verdict]

WRITES: dict[str, WriteProbe] = {}
READS: dict[str, ReadProbe] = {}
PREPARE: dict[str, Callable[[Scenario], None]] = {}


def writes(*keys: str) -> Callable[[WriteProbe], WriteProbe]:
    def register(fn: WriteProbe) -> WriteProbe:
        for key in keys:
            WRITES[key] = fn
        return fn

    return register


def reads(key: str) -> Callable[[ReadProbe], ReadProbe]:
    def register(fn: ReadProbe) -> ReadProbe:
        READS[key] = fn
        return fn

    return register


def _someone_else(persona: str) -> str:
    """An organisation that is not the persona's."""
    return "de" if ORG_OF[persona] == "fr" else "fr"


def _target_org(persona: str, own: bool) -> str:
    return ORG_OF[persona] if own else _someone_else(persona)


def _colleague(scn: Scenario, persona: str) -> User:
    """Another user of the persona's organisation, or the persona itself if it has none."""
    me = scn.users[persona]
    others = User.objects.filter(organisation=me.organisation).exclude(pk=me.pk).order_by("pk")
    return others.first() or me


# --- requests -----------------------------------------------------------------------------------


@writes("rfa.create")
def _create_rfa(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: rfa_services.create_rfa(scn.users[p], rfa_body())


@writes("rfa.update")
def _update_rfa(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: rfa_services.update_rfa(scn.users[p], scn.rfa_id, {"title": "Updated"})


def _lifecycle(action: Action) -> WriteProbe:
    def probe(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
        user = scn.users[p]
        if action is Action.ROUTE:
            return lambda: rfa_services.route(user, scn.rfa_id, [scn.org("us").pk])
        return lambda: rfa_services.transition(user, scn.rfa_id, action.value, reason="because")

    return probe


for _action in Action:
    if _action is not Action.ACCEPT_OFFER:
        WRITES[f"rfa.{_action.value}"] = _lifecycle(_action)


# --- offers -------------------------------------------------------------------------------------


@writes("offer.create")
def _create_offer(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: rfa_services.create_offer(scn.users[p], scn.rfa_id, _offer_data())


#: The offer each offer action is tried on unless the persona acts on its own: one the action
#: applies to, so that a refusal is about rights.
_OFFER_TARGET = {
    OfferAction.ACCEPT: "fr",
    OfferAction.DECLINE: "fr",
    OfferAction.WITHDRAW: "fr",
    OfferAction.START: "de",
    OfferAction.COMPLETE: "de",
}


def _offer_probe(action: OfferAction) -> WriteProbe:
    def probe(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
        mine = ORG_OF[p]
        if own and mine in scn.offers:
            target = scn.offers[mine]
        elif not own and mine in scn.offers:
            target = scn.offers["de" if mine == "fr" else "fr"]
        else:
            target = scn.offers[_OFFER_TARGET[action]]
        return lambda: rfa_services.offer_action(scn.users[p], target.pk, action.value)

    return probe


for _offer_action in OfferAction:
    WRITES[f"offer.{_offer_action.value}"] = _offer_probe(_offer_action)


# --- the engagement -----------------------------------------------------------------------------


@writes("engagement.member")
def _add_member(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    colleague = {"ee": "ee_analyst", "de": "de_analyst"}
    mine = ORG_OF[p]
    if own and mine in colleague:
        name = colleague[mine]
    else:
        name = "de_analyst" if mine == "ee" else "ee_analyst"
    user = scn.fed.users[name]
    return lambda: eng_services.add_member(scn.users[p], scn.eng_id, user.pk)


@writes("task.create")
def _add_task(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    data = {"title": "Check the RTUs", "assignee_id": scn.org("ee").pk, "tlp": "amber"}
    return lambda: eng_services.add_task(scn.users[p], scn.eng_id, data)


@writes("task.update")
def _update_task(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    assert scn.task_id is not None
    task_id = scn.task_id
    return lambda: eng_services.update_task(
        scn.users[p], scn.eng_id, task_id, {"outcome": "ongoing"}
    )


@writes("note.create")
def _add_note(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: eng_services.add_note(scn.users[p], scn.eng_id, {"body": "n", "tlp": "amber"})


@writes("sitrep.create")
def _add_sitrep(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    data = {"summary": "Contained", "tlp": "amber"}
    return lambda: eng_services.add_sitrep(scn.users[p], scn.eng_id, data)


@writes("indicator.create")
def _add_indicator(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    data = {"value": f"{p}.evil.example", "tlp": "amber"}
    return lambda: indicators.add_indicator(scn.users[p], scn.eng_id, data)


@writes("indicator.import")
def _import_indicators(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    content = f"value,tlp\n{p}.csv.evil.example,amber\n"
    return lambda: indicators.import_indicators(
        scn.users[p], scn.eng_id, fmt="csv", content=content
    )


@writes("taxii.add")
def _taxii_add(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    """POST one AMBER indicator to the engagement's collection, as the TAXII view does."""
    from vcisc.sharing.taxii.errors import TaxiiError
    from vcisc.sharing.taxii.scopes import get_collection
    from vcisc.sharing.taxii.store import add_objects

    marking = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-11-30T10:00:00.000Z",
        "modified": "2026-11-30T10:00:00.000Z",
        "pattern": f"[domain-name:value = '{p.replace('_', '-')}.taxii.example']",
        "pattern_type": "stix",
        "valid_from": "2026-11-30T10:00:00Z",
        "object_marking_refs": [marking],
    }
    body = json.dumps({"objects": [indicator]}).encode()

    def act() -> object:
        user = scn.users[p]
        try:
            return add_objects(user, get_collection(user, str(scn.eng_id)), body, max_bytes=10**6)
        except TaxiiError as exc:  # the same verdicts as the API's domain errors
            raise _status_error(exc.status) from None

    return act


def _status_error(status: int) -> DomainError:
    error = DomainError(f"HTTP {status}")
    error.status = status
    return error


@writes("workspace.red")
def _add_red(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: eng_services.add_note(scn.users[p], scn.eng_id, {"body": "r", "tlp": "red"})


@writes("review.create")
def _submit_review(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    data = {"what_helped": "Remote IR", "lessons": "Exercise the grid scenario"}
    return lambda: eng_services.submit_review(scn.users[p], scn.eng_id, data)


# --- directory ----------------------------------------------------------------------------------


def _own_capabilities(scn: Scenario) -> None:
    """Give the organisations without a capability one, so that each liaison has its own."""
    for key in ("ee", "ua", "am"):
        fs.create_capability(
            None, organisation_id=scn.org(key).pk, service_type="threat-intelligence"
        )


@writes("nation.create")
def _create_nation(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: fs.create_nation(scn.users[p], code="LT", name="Lithuania", kind="member")


@writes("nation.change")
def _update_nation(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    nation = Nation.objects.get(code="EE")
    return lambda: fs.update(scn.users[p], nation, {"name": "Republic of Estonia"})


@writes("nation.deactivate")
def _deactivate_nation(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    nation = Nation.objects.get(code="US")
    return lambda: fs.deactivate(scn.users[p], nation)


@writes("organisation.create")
def _create_org(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    return lambda: fs.create_organisation(
        scn.users[p], name="NCSC-EE", kind="cert", nation_code="EE"
    )


@writes("organisation.change")
def _update_org(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    org = scn.org(_target_org(p, own))
    return lambda: fs.update(scn.users[p], org, {"short_name": "X"})


@writes("organisation.deactivate")
def _deactivate_org(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    org = scn.org(_target_org(p, own))
    return lambda: fs.deactivate(scn.users[p], org)


def _contact(scn: Scenario, p: str, own: bool) -> PointOfContact:
    """The target organisation's point of contact; the secretariat has none, so its users are
    tried on another organisation's."""
    org = scn.org(_target_org(p, own))
    return PointOfContact.objects.filter(organisation=org).first() or PointOfContact.objects.get(
        organisation=scn.org(_someone_else(p))
    )


@writes("pointofcontact.create")
def _create_contact(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    org = scn.org(_target_org(p, own))
    return lambda: fs.create_contact(
        scn.users[p], organisation_id=org.pk, name="Night desk", email="night@desk.example"
    )


@writes("pointofcontact.change")
def _update_contact(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    contact = _contact(scn, p, own)
    return lambda: fs.update(scn.users[p], contact, {"phone": "+49 30 1234"})


@writes("pointofcontact.deactivate")
def _deactivate_contact(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    contact = _contact(scn, p, own)
    return lambda: fs.deactivate(scn.users[p], contact)


@writes("capability.create")
def _create_capability(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    org = scn.org(_target_org(p, own))
    return lambda: fs.create_capability(
        scn.users[p], organisation_id=org.pk, service_type="digital-forensics"
    )


def _capability(scn: Scenario, p: str, own: bool) -> Capability:
    org = scn.org(_target_org(p, own))
    return Capability.objects.filter(organisation=org).order_by("pk")[0]


@writes("capability.change")
def _update_capability(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    cap = _capability(scn, p, own)
    return lambda: fs.update(scn.users[p], cap, {"max_concurrent": 5})


@writes("capability.deactivate")
def _deactivate_capability(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    cap = _capability(scn, p, own)
    return lambda: fs.deactivate(scn.users[p], cap)


PREPARE.update({"capability.change": _own_capabilities, "capability.deactivate": _own_capabilities})


# --- accounts and tokens ------------------------------------------------------------------------


def _account(scn: Scenario, p: str, own: bool) -> User:
    """A colleague of the persona (own), or a user of another organisation."""
    if own:
        return _colleague(scn, p)
    return scn.fed.users["ee_analyst" if ORG_OF[p] != "ee" else "de_analyst"]


@writes("user.create")
def _create_user(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    org = scn.org(ORG_OF[p] if own and ORG_OF[p] != "secretariat" else "ee")
    return lambda: fs.create_user(
        scn.users[p], email="new@people.example", organisation_id=org.pk, roles=["analyst"]
    )


@writes("user.change")
def _update_user(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    account = _account(scn, p, own)
    return lambda: fs.update(scn.users[p], account, {"first_name": "Kai"})


@writes("user.deactivate")
def _deactivate_user(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    account = _account(scn, p, own)
    return lambda: fs.deactivate(scn.users[p], account)


def _not_me(scn: Scenario, p: str) -> User:
    return scn.fed.users["ee_analyst" if p != "requester_analyst" else "ee"]


@writes("token.create")
def _create_token(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    me = scn.users[p]
    owner = me if own else _not_me(scn, p)
    return lambda: fs.create_token(me, owner, days=1)


@writes("token.revoke")
def _revoke_token(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    me = scn.users[p]
    owner = me if own else _not_me(scn, p)
    token = ApiToken.objects.filter(user=owner).first()
    assert token is not None
    return lambda: fs.revoke_token(me, token)


# --- notification delivery ----------------------------------------------------------------------


@functools.cache
def _public_key() -> str:
    import pysequoia

    key = pysequoia.Tsk.generate("Desk <desk@cert.example>")
    return str(key.extract_certificate())


def _keys_on_contacts(scn: Scenario) -> None:
    from vcisc.notify import services as notify

    for contact in PointOfContact.objects.all():
        notify.set_contact_key(None, contact, _public_key())


def _dead_letter(scn: Scenario) -> None:
    from vcisc.notify.models import Delivery, DeliveryStatus

    now = timezone.now()
    contact = PointOfContact.objects.filter(organisation=scn.org("de")).first()
    assert contact is not None
    message = OutboxMessage.objects.create(
        created_at=now,
        kind="rfa.routed",
        organisation=scn.org("de"),
        contact=contact,
        subject="s",
        body="b",
    )
    Delivery.objects.create(
        message=message,
        channel="email",
        status=DeliveryStatus.DEAD,
        created_at=now,
        next_attempt_at=now,
        dead_at=now,
    )


@writes("delivery.update_delivery_settings")
def _delivery_settings(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.notify import services as notify

    org = scn.org(_target_org(p, own))
    return lambda: notify.update_delivery_settings(scn.users[p], org, {"sender_name": "Desk"})


@writes("delivery.set_contact_key")
def _set_key(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.notify import services as notify

    contact = _contact(scn, p, own)
    return lambda: notify.set_contact_key(scn.users[p], contact, _public_key())


@writes("delivery.remove_contact_key")
def _remove_key(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.notify import services as notify

    contact = _contact(scn, p, own)
    return lambda: notify.remove_contact_key(scn.users[p], contact)


@writes("delivery.rotate_webhook_secret")
def _rotate_secret(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.notify import services as notify

    contact = _contact(scn, p, own)
    return lambda: notify.rotate_webhook_secret(scn.users[p], contact)


@writes("delivery.replay")
def _replay(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.notify import services as notify
    from vcisc.notify.models import Delivery

    ids = list(Delivery.objects.values_list("pk", flat=True))
    return lambda: notify.replay(scn.users[p], ids)


PREPARE.update({"delivery.remove_contact_key": _keys_on_contacts, "delivery.replay": _dead_letter})


# --- federation feeds ---------------------------------------------------------------------------


def _a_feed(scn: Scenario) -> None:
    from vcisc.feeds import services as feeds

    feeds.create_feed(scn.fed.users["coordinator"], {"name": "Probe feed", "tlp": "green"})


def _probe_feed() -> UUID:
    from vcisc.feeds.models import Feed

    return Feed.objects.get(name="Probe feed").pk


@writes("feed.create")
def _create_feed(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.feeds import services as feeds

    return lambda: feeds.create_feed(scn.users[p], {"name": f"{p} feed", "tlp": "clear"})


@writes("feed.update")
def _disable_feed(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.feeds import services as feeds

    return lambda: feeds.update_feed(scn.users[p], _probe_feed(), {"enabled": False})


@writes("feed.import")
def _import_feed(scn: Scenario, p: str, own: bool) -> Callable[[], object]:
    from vcisc.feeds import services as feeds

    return lambda: feeds.import_feed_content(scn.users[p], _probe_feed(), {}, lambda _: None)


@reads("read.feeds")
def _see_feeds(scn: Scenario, p: str) -> Verdict:
    listed = scn.apis[p].get("/feeds")
    if listed.status_code == 200:
        assert [f["name"] for f in listed.json()] == ["Probe feed"]
        return _status(scn.apis[p].get(f"/feeds/{_probe_feed()}/indicators"))
    return _status(listed)


PREPARE.update({k: _a_feed for k in ("feed.update", "feed.import", "read.feeds")})


# --- reads (through the API) --------------------------------------------------------------------


def _status(response: Any) -> Verdict:
    if response.status_code == 200:
        return Verdict.ALLOWED
    return _BY_STATUS[response.status_code]


def _whose(got: set[Any], everything: set[Any], own: set[Any]) -> Verdict:
    """ALLOWED if everything is shown, OWN if the persona's own part only, FORBIDDEN if
    nothing; anything else is a finding of its own."""
    assert everything != own, "the scenario must hold more than the persona's own"
    if got == everything:
        return Verdict.ALLOWED
    if got and got == own:
        return Verdict.OWN
    if not got:
        return Verdict.FORBIDDEN
    raise AssertionError(f"shows {sorted(got)}: neither all {sorted(everything)} nor own")


@reads("read.request")
def _see_request(scn: Scenario, p: str) -> Verdict:
    return _status(scn.apis[p].get(f"/requests/{scn.rfa_id}"))


def _see_content(scn: Scenario, p: str) -> Verdict:
    response = scn.apis[p].get(f"/requests/{scn.rfa_id}")
    if response.status_code != 200:
        return _status(response)
    body = response.json()
    shown = body.get("description") is not None
    assert body["access"] == ("content" if shown else "metadata"), body["access"]
    return Verdict.ALLOWED if shown else Verdict.FORBIDDEN


READS["read.content"] = READS["read.content.red"] = _see_content


@reads("read.offers")
def _see_offers(scn: Scenario, p: str) -> Verdict:
    response = scn.apis[p].get(f"/requests/{scn.rfa_id}/offers")
    if response.status_code != 200:
        return _status(response)
    got = {UUID(o["id"]) for o in response.json()}
    own = {o.pk for k, o in scn.offers.items() if k == ORG_OF[p]}
    return _whose(got, {o.pk for o in scn.offers.values()}, own)


@reads("read.routes")
def _see_routes(scn: Scenario, p: str) -> Verdict:
    response = scn.apis[p].get(f"/requests/{scn.rfa_id}/routes")
    if response.status_code != 200:
        return _status(response)
    got = {r["organisation_id"] for r in response.json()}
    everything = {scn.org("de").pk, scn.org("fr").pk}
    return _whose(got, everything, everything & {scn.org(ORG_OF[p]).pk})


@reads("read.matches")
def _see_matches(scn: Scenario, p: str) -> Verdict:
    return _status(scn.apis[p].get(f"/requests/{scn.rfa_id}/matches"))


@reads("read.engagement")
def _see_engagement(scn: Scenario, p: str) -> Verdict:
    api = scn.apis[p]
    verdict = _status(api.get(f"/engagements/{scn.eng_id}"))
    listed = scn.eng_id in {UUID(e["id"]) for e in api.get("/engagements").json()}
    assert listed == (verdict is Verdict.ALLOWED), "GET /engagements disagrees with GET /{id}"
    return verdict


def _items(scn: Scenario, p: str, kind: str, wanted: UUID | None) -> Verdict:
    response = scn.apis[p].get(f"/engagements/{scn.eng_id}/{kind}")
    if response.status_code != 200:
        return _status(response)
    found = {UUID(i["id"]) for i in response.json()}
    return Verdict.ALLOWED if wanted in found else Verdict.FORBIDDEN


@reads("read.items")
def _see_items(scn: Scenario, p: str) -> Verdict:
    return _items(scn, p, "tasks", scn.task_id)


@reads("read.items.red")
def _see_red_items(scn: Scenario, p: str) -> Verdict:
    return _items(scn, p, "notes", scn.red_note_id)


def _all_of(scn: Scenario, p: str, *paths: str) -> Verdict:
    verdicts = {_status(scn.apis[p].get(path)) for path in paths}
    assert len(verdicts) == 1, f"{paths} answer differently: {verdicts}"
    return verdicts.pop()


@reads("read.directory")
def _see_directory(scn: Scenario, p: str) -> Verdict:
    return _all_of(scn, p, "/nations", "/organisations")


@reads("read.catalogue")
def _see_catalogue(scn: Scenario, p: str) -> Verdict:
    return _all_of(scn, p, "/contacts", "/capabilities")


@reads("read.users")
def _see_users(scn: Scenario, p: str) -> Verdict:
    response = scn.apis[p].get("/users?limit=500")
    assert response.status_code == 200, response.status_code
    got = {u["organisation_id"] for u in response.json()["items"]}
    everything = set(User.objects.values_list("organisation_id", flat=True))
    return _whose(got, everything, {scn.users[p].organisation_id})


@reads("read.tokens")
def _see_tokens(scn: Scenario, p: str) -> Verdict:
    response = scn.apis[p].get("/tokens")
    assert response.status_code == 200, response.status_code
    got = {t["user_id"] for t in response.json()}
    everything = set(ApiToken.objects.values_list("user_id", flat=True))
    return _whose(got, everything, {scn.users[p].pk})


# --- the cells ----------------------------------------------------------------------------------


def _describe(verdict: Verdict, changed: bool | None = None) -> str:
    text = verdict.value
    if changed is not None:
        text += " (wrote)" if changed else " (wrote nothing)"
    return text


def _check_write(row: Row, scn: Scenario, persona: str) -> list[str]:
    cell = row.cell(persona)
    probe = WRITES[row.key]
    problems = []

    def expect(own: bool, want: Verdict) -> None:
        got, changed = attempt(probe(scn, persona, own))
        ok = got is want and changed == (want is Verdict.ALLOWED)
        if not ok:
            on = "own" if own else "someone else's" if cell.verdict is Verdict.OWN else "its"
            problems.append(
                f"{persona} ({on}): table says {_describe(want)}, code gives "
                f"{_describe(got, changed)}"
            )

    if cell.verdict is Verdict.OWN:
        assert row.others is not None, row.key
        expect(True, Verdict.ALLOWED)
        expect(False, row.others)
    else:
        # Refusals are tried on the persona's own object where it has one (the strongest case);
        # "allowed" on someone else's (allowed means for anyone's); "hidden" on the row's usual
        # target, which the persona cannot see.
        expect(cell.verdict in (Verdict.FORBIDDEN, Verdict.CONFLICT), cell.verdict)
    return problems


def _check_read(row: Row, scn: Scenario, persona: str) -> list[str]:
    want = row.cell(persona).verdict
    try:
        got = READS[row.key](scn, persona)
    except AssertionError as exc:
        return [f"{persona}: {exc}"]
    if got is not want:
        return [f"{persona}: table says {want.value}, code gives {got.value}"]
    return []


@pytest.mark.parametrize("key", [row.key for row in matrix().rows])
def test_cell(federation: Federation, key: str) -> None:
    """Every persona performs the row's action; the outcome is the cell's."""
    row = matrix().row(key)
    scn = build(federation, row.stage, **SCENARIO.get(key, {}))
    if key in PREPARE:
        PREPARE[key](scn)
    problems: list[str] = []
    if key in READS:
        before = _counts()
        for persona in PERSONAS:
            problems += _check_read(row, scn, persona)
        assert _counts() == before, "reading wrote something"
    else:
        for persona in PERSONAS:
            problems += _check_write(row, scn, persona)
    assert not problems, (
        f"{row.title!r} ({key}): the code and the permission matrix disagree:\n  "
        + "\n  ".join(problems)
        + f"\nChange the code or vcisc/permissions.py, then {REGENERATE}"
    )


# --- the conditions in the "when" column --------------------------------------------------------


def test_lifecycle_actions_outside_their_states_conflict(federation: Federation) -> None:
    """The party of a lifecycle action gets 409 in a state the action does not apply in."""
    scn = build(federation, RfaState.ACTIVE)
    problems = []
    for action in Action:
        if action is Action.ACCEPT_OFFER or action in allowed_actions(RfaState.ACTIVE):
            continue
        row = matrix().row(f"rfa.{action.value}")
        for persona in PERSONAS:
            if row.cell(persona).verdict is Verdict.ALLOWED:
                got, changed = attempt(WRITES[row.key](scn, persona, True))
                if got is not Verdict.CONFLICT or changed:
                    problems.append(f"{action.value} by {persona} while active: {got.value}")
    assert not problems, problems


def test_conditions_outside_their_states(federation: Federation) -> None:
    """The other state conditions of the table: edits, reviews and matching, outside theirs."""
    scn = build(federation, RfaState.ACTIVE)
    for key, persona in (("rfa.update", "requester"), ("review.create", "requester")):
        assert attempt(WRITES[key](scn, persona, True)) == (Verdict.CONFLICT, False), key
    assert _see_matches(scn, "coordinator") is Verdict.CONFLICT
    draft = rfa_services.create_rfa(scn.users["requester"], rfa_body())
    assert scn.apis["coordinator"].get(f"/requests/{draft.pk}").status_code == 404


def test_the_workspace_closes_with_the_request(federation: Federation) -> None:
    scn = build(federation, RfaState.REPORTING, reviewed=True)
    rfa_services.transition(scn.users["requester"], scn.rfa_id, "close")
    for key in ("task.create", "note.create", "sitrep.create", "task.update"):
        assert attempt(WRITES[key](scn, "participant", True)) == (Verdict.CONFLICT, False), key


# --- the matrix covers the code -----------------------------------------------------------------


def test_every_user_action_has_a_row() -> None:
    """A service function that acts for a user (takes an ``actor``) needs a row, or a reason in
    NOT_ACTIONS why it is none; rows name only functions that exist."""
    functions = set(permissions.user_actions())
    covered = set().union(*(row.covers for row in matrix().rows))
    excused = set(permissions.NOT_ACTIONS)
    assert excused <= functions, f"NOT_ACTIONS names what is gone: {excused - functions}"
    missing = functions - covered - excused
    assert not missing, f"no row in vcisc/permissions.py for {sorted(missing)}"
    assert covered <= functions, f"rows name unknown functions: {covered - functions}"


def test_every_lifecycle_and_offer_action_has_a_row() -> None:
    keys = {row.key for row in matrix().rows}
    for action in Action:
        assert ("offer.accept" if action is Action.ACCEPT_OFFER else f"rfa.{action}") in keys
    for offer_action in OfferAction:
        assert f"offer.{offer_action}" in keys


def test_every_row_is_enforced() -> None:
    keys = {row.key for row in matrix().rows}
    probed = set(WRITES) | set(READS)
    assert keys <= probed, f"rows that nothing here enforces: {sorted(keys - probed)}"
    assert probed <= keys, f"probes for rows that are gone: {sorted(probed - keys)}"
    for row in matrix().rows:
        if any(row.cell(p).verdict is Verdict.OWN for p in PERSONAS) and row.key in WRITES:
            assert row.others is not None and row.own, row.key


def test_lifecycle_parties_come_from_the_write_path() -> None:
    parties = permissions.lifecycle_parties()
    for action in rfa_services._REQUESTER_ACTIONS:
        assert parties[action] is permissions.Party.REQUESTER
    for action in rfa_services._SECRETARIAT_ACTIONS:
        assert parties[action] is permissions.Party.SECRETARIAT


def test_docs_permissions_md_is_generated_from_the_code() -> None:
    expected = permissions.render()
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, f"docs/permissions.md is out of date: run `{REGENERATE}`"

"""Deadline clocks: reminders before, escalation along the policy after, each once, on the
timeline for those who may read it, and a message to the right point of contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Federation, offer_body
from tests.notify.conftest import drain, worker_settings
from tests.web.conftest import file_request
from vcisc import authz
from vcisc.assistance.models import RequestForAssistance, TimelineEntry
from vcisc.audit.models import AuditRecord
from vcisc.federation import services as fs
from vcisc.federation.models import PointOfContact
from vcisc.notify import services
from vcisc.notify.escalation import scan
from vcisc.notify.models import Delivery, Escalation, OutboxMessage
from vcisc.notify.policy import parse_policy

pytestmark = pytest.mark.django_db

#: A Wednesday, 10:00 UTC.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
POLICY = parse_policy("rota+0m,duty-desk+30m,secretariat+1h")


def _contact(
    fed: Federation, org: str, name: str, on_call: str = "24/7", **extra: Any
) -> PointOfContact:
    slug = name.lower().replace(" ", "-")
    return fs.create_contact(
        None,
        organisation_id=fed.orgs[org].pk,
        name=name,
        email=extra.pop("email", f"{slug}@{org}.example"),
        languages=["en"],
        time_zone="UTC",
        on_call=on_call,
        **extra,
    )


@pytest.fixture
def fed(federation: Federation) -> Federation:
    _contact(federation, "secretariat", "Duty officer", phone="+32 2 555 0100")
    return federation


def _due(rfa: dict[str, Any], **fields: datetime) -> None:
    """Move the request's clocks to ``NOW``'s frame; unnamed ones far into the future."""
    far = NOW + timedelta(days=30)
    clocks = {"triage_due": far, "first_offer_due": far, "acceptance_due": far}
    RequestForAssistance.objects.filter(pk=rfa["id"]).update(**(clocks | fields))


def _messages(kind: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(kind=kind).select_related("contact", "organisation"))


def test_triage_breach_escalates_along_the_policy_once_per_rule(fed: Federation) -> None:
    rfa = file_request(fed)  # submitted, not triaged: the secretariat's clock
    _due(rfa, triage_due=NOW - timedelta(minutes=1))
    assert scan(now=NOW, policy=POLICY, reminders=()) == 1
    assert scan(now=NOW, policy=POLICY, reminders=()) == 0  # a rescan repeats nothing
    (row,) = Escalation.objects.all()
    assert (row.step, row.kind, row.rule) == ("triage", "escalation", "rota+0s")
    assert row.organisation == fed.orgs["secretariat"] and row.contact.name == "Duty officer"  # type: ignore[union-attr]
    (msg,) = _messages("deadline.escalated")
    assert msg.contact.name == "Duty officer" and msg.tlp == "amber"
    assert (
        msg.subject == f"[TLP:AMBER] {rfa['reference']}: triage deadline breached, escalated to you"
    )
    assert "no triage decision by the secretariat" in msg.body
    assert msg.deliveries.get().channel == "email"
    # Half an hour later the duty desk, an hour later the secretariat's duty officer.
    assert scan(now=NOW + timedelta(minutes=28), policy=POLICY, reminders=()) == 0
    assert scan(now=NOW + timedelta(minutes=31), policy=POLICY, reminders=()) == 1
    assert scan(now=NOW + timedelta(hours=3), policy=POLICY, reminders=()) == 1
    assert list(Escalation.objects.values_list("rule", flat=True)) == [
        "rota+0s",
        "duty-desk+1800s",
        "secretariat+3600s",
    ]
    entries = TimelineEntry.objects.filter(rfa_id=rfa["id"], kind="deadline.escalated")
    assert entries.count() == 3 and all(e.audience == fed.orgs["secretariat"] for e in entries)
    assert "Triage deadline breached: escalated to VCISC Secretariat" in entries[0].summary
    assert AuditRecord.objects.filter(action="rfa.escalation").count() == 3
    # Once triaged the clock is met: nothing further.
    fed.api("coordinator").post(f"/requests/{rfa['id']}/transitions", {"action": "start-triage"})
    fed.api("coordinator").post(
        f"/requests/{rfa['id']}/routes", {"organisations": [fed.orgs["de"].pk]}
    )
    assert scan(now=NOW + timedelta(hours=5), policy=parse_policy("rota+4h"), reminders=()) == 0


def test_first_offer_breach_reaches_each_routed_organisation_and_only_them(fed: Federation) -> None:
    rfa = file_request(fed, route_to=("de", "fr"))
    _due(rfa, first_offer_due=NOW - timedelta(minutes=5))
    assert scan(now=NOW + timedelta(hours=2), policy=POLICY, reminders=()) == 5
    rows = Escalation.objects.filter(step="first-offer")
    assert sorted((r.rule, r.organisation.name) for r in rows) == [
        ("duty-desk+1800s", "ANSSI"),
        ("duty-desk+1800s", "CERT-Bund"),
        ("rota+0s", "ANSSI"),
        ("rota+0s", "CERT-Bund"),
        ("secretariat+3600s", "VCISC Secretariat"),
    ]
    # The duty officer learns who must act and how to reach them.
    (to_sec,) = [
        m for m in _messages("deadline.escalated") if m.organisation == fed.orgs["secretariat"]
    ]
    assert "Responsible: ANSSI" in to_sec.body and "Responsible: CERT-Bund" in to_sec.body
    de_msgs = [m for m in _messages("deadline.escalated") if m.organisation == fed.orgs["de"]]
    assert len(de_msgs) == 2 and all("ANSSI" not in m.body for m in de_msgs)
    # On the timeline: FR reads its own escalations, not DE's; the requester reads all.
    rfa_row = RequestForAssistance.objects.get(pk=rfa["id"])
    fr_sees = authz.timeline_visible(fed.users["fr"], rfa_row).filter(kind="deadline.escalated")
    assert fr_sees.count() == 2 and all("CERT-Bund" not in e.summary for e in fr_sees)
    ee_sees = authz.timeline_visible(fed.users["ee"], rfa_row).filter(kind="deadline.escalated")
    assert ee_sees.count() == 5
    # An offer meets the clock.
    assert fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).status_code == 201
    assert scan(now=NOW + timedelta(days=1), policy=parse_policy("rota+20h"), reminders=()) == 0


def test_rota_asks_the_next_contact_on_call_and_the_duty_desk_is_configurable(
    fed: Federation,
) -> None:
    desk = fed.orgs["de"].contacts.get()
    _contact(fed, "de", "Office hours", on_call="sat 09:00-10:00")  # not on call on Wednesday
    night = _contact(fed, "de", "Night shift")
    rfa = file_request(fed, route_to=("de",))
    _due(rfa, first_offer_due=NOW - timedelta(minutes=1))
    policy = parse_policy("rota+0m,rota+15m,rota+30m,duty-desk+1h")
    scan(now=NOW + timedelta(minutes=16), policy=policy, reminders=())
    asked = list(
        Escalation.objects.filter(organisation=fed.orgs["de"]).values_list(
            "contact__name", flat=True
        )
    )
    assert asked == [desk.name, "Night shift"]  # "Office hours" is off duty now
    scan(now=NOW + timedelta(minutes=31), policy=policy, reminders=())
    assert Escalation.objects.get(rule="rota+1800s").contact.name == "Office hours"  # type: ignore[union-attr]
    services.update_delivery_settings(None, fed.orgs["de"], {"duty_desk_id": night.pk})
    scan(now=NOW + timedelta(hours=2), policy=policy, reminders=())
    row = Escalation.objects.get(rule="duty-desk+3600s")
    assert row.contact == night
    assert [m.contact for m in _messages("deadline.escalated") if "duty desk" in m.body] == [night]


def test_reminders_before_the_deadline_only_the_nearest(fed: Federation) -> None:
    rfa = file_request(fed)
    _due(rfa, triage_due=NOW + timedelta(minutes=20))
    reminders = (timedelta(hours=1), timedelta(minutes=30))
    assert scan(now=NOW, policy=POLICY, reminders=reminders) == 1
    (row,) = Escalation.objects.all()
    assert (row.kind, row.rule) == ("reminder", "reminder-1800s")  # not the stale 1 h one
    (msg,) = _messages("deadline.reminder")
    assert msg.subject.endswith("triage deadline in 20 min")
    assert scan(now=NOW + timedelta(minutes=5), policy=POLICY, reminders=reminders) == 0
    entry = TimelineEntry.objects.get(rfa_id=rfa["id"], kind="deadline.reminder")
    assert entry.summary.startswith("Reminder to VCISC Secretariat")


def test_acceptance_escalates_to_the_requester_only_when_an_offer_waits(fed: Federation) -> None:
    rfa = file_request(fed, route_to=("de",))
    _due(rfa, acceptance_due=NOW - timedelta(minutes=1))
    assert scan(now=NOW, policy=POLICY, reminders=()) == 0  # nothing to accept yet
    assert fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).status_code == 201
    assert scan(now=NOW, policy=POLICY, reminders=()) == 1
    (row,) = Escalation.objects.all()
    assert (row.step, row.organisation) == ("acceptance", fed.orgs["ee"])


def test_ended_requests_do_not_escalate(fed: Federation) -> None:
    rfa = file_request(fed)
    assert (
        fed.api("ee").post(f"/requests/{rfa['id']}/transitions", {"action": "withdraw"}).status_code
        == 200
    )
    _due(rfa, triage_due=NOW - timedelta(hours=1))
    assert scan(now=NOW, policy=POLICY, reminders=(timedelta(hours=2),)) == 0


def test_the_worker_scans_and_delivers_escalations(fed: Federation, settings: Any) -> None:
    rfa = file_request(fed)
    RequestForAssistance.objects.filter(pk=rfa["id"]).update(
        triage_due=datetime.now(UTC) - timedelta(minutes=1)
    )
    from tests.notify.receivers import SmtpHandler, start_smtp

    handler = SmtpHandler()
    controller = start_smtp(handler)
    try:
        stats = drain(worker_settings(controller.port, policy=POLICY))
    finally:
        controller.stop()
    assert stats.escalations == 1
    (mail,) = handler.mails
    assert mail.recipients == ["duty-officer@secretariat.example"]
    # AMBER is above the e-mail ceiling: the headline, the label and a link.
    assert mail.message["Subject"] == (
        f"[TLP:AMBER] {rfa['reference']}: a deadline was breached and escalated to you"
    )
    assert Delivery.objects.get(message__kind="deadline.escalated").status == "sent"

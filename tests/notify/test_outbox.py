"""Queueing: committed with the change, one delivery per channel, in-app, nothing on rollback."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.conftest import Federation
from tests.notify.conftest import hook
from tests.web.conftest import file_request
from vcisc.assistance import services
from vcisc.federation import services as fs
from vcisc.notify.models import (
    Delivery,
    DeliveryStatus,
    InAppNotification,
    OutboxMessage,
    OutboxStatus,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local")]


def test_routing_queues_one_delivery_per_channel(federation: Federation) -> None:
    fed = federation
    hook(fed, "de", "http://127.0.0.1:9/hook")
    fs.create_contact(
        None,
        organisation_id=fed.orgs["de"].pk,
        name="Night phone",
        phone="+49 30 1234",
        languages=["de"],
        time_zone="Europe/Berlin",
        on_call="24/7",
    )
    rfa = file_request(fed, route_to=("de", "fr"))
    msgs = OutboxMessage.objects.filter(rfa_id=rfa["id"], kind="rfa.routed")
    assert msgs.count() == 3  # DE desk, DE phone-only contact, FR desk
    desk = msgs.get(contact__name="CERT-Bund desk")
    assert desk.tlp == "amber" and desk.status == OutboxStatus.PENDING
    assert sorted(desk.deliveries.values_list("channel", flat=True)) == ["email", "webhook"]
    assert all(d.status == DeliveryStatus.PENDING for d in desk.deliveries.all())
    phone = msgs.get(contact__name="Night phone")
    assert phone.status == OutboxStatus.NO_CHANNEL and not phone.deliveries.exists()
    assert list(
        msgs.get(organisation=fed.orgs["fr"]).deliveries.values_list("channel", flat=True)
    ) == ["email"]
    # Each message its own idempotency key.
    assert len({m.key for m in msgs}) == 3
    # One in-app notification per organisation, not per contact.
    inapp = InAppNotification.objects.filter(rfa_id=rfa["id"], kind="rfa.routed")
    assert sorted(inapp.values_list("organisation_id", flat=True)) == sorted(
        [fed.orgs["de"].pk, fed.orgs["fr"].pk]
    )
    assert rfa["reference"] in inapp.first().summary  # type: ignore[union-attr]


def test_a_rolled_back_change_queues_nothing(federation: Federation) -> None:
    fed = federation
    rfa = file_request(fed, triage=True)
    before = (OutboxMessage.objects.count(), Delivery.objects.count())

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.route(fed.users["coordinator"], rfa["id"], [fed.orgs["de"].pk])
        assert Delivery.objects.count() > before[1]  # queued inside the transaction …
        raise Boom
    assert (OutboxMessage.objects.count(), Delivery.objects.count()) == before  # … and gone


def test_offer_notification_goes_to_the_requester(federation: Federation) -> None:
    fed = federation
    from tests.conftest import offer_body

    rfa = file_request(fed, route_to=("de",))
    assert fed.api("de").post(f"/requests/{rfa['id']}/offers", offer_body()).status_code == 201
    msg = OutboxMessage.objects.get(kind="offer.received")
    assert msg.organisation == fed.orgs["ee"] and msg.payload["reference"] == rfa["reference"]
    assert msg.deliveries.count() == 1

"""The operator's commands (worker, outbox, notify) and in-app notifications in the console."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from tests.conftest import Federation
from tests.integration.test_cli import run
from tests.notify.conftest import hook
from tests.notify.receivers import HttpReceiver
from tests.web.conftest import file_request, signed_in
from vcisc.audit.models import AuditRecord
from vcisc.notify.models import ContactKey, Delivery, DeliverySettings, DeliveryStatus
from vcisc.notify.signing import verify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local")]


def test_worker_once_then_outbox_list_and_replay(
    federation: Federation, http: HttpReceiver, capsys: Any
) -> None:
    fed = federation
    hook(fed, "de", f"{http.url}/status/410")
    file_request(fed, route_to=("de",))
    code, out, err = run(capsys, "worker", "--once", "--batch", "4", "--concurrency", "8")
    assert code == 0, err
    assert "e-mail OFF" in err and "sent 0, retrying 0, dead 1" in out
    code, out, _ = run(capsys, "outbox", "list", "--dead")
    webhook = Delivery.objects.get(channel="webhook")
    assert code == 0 and f"{webhook.pk:6} webhook dead" in out and "410" in out
    code, out, _ = run(capsys, "outbox", "list")
    assert "email   pending" in out  # e-mail waits for a relay: listed, not lost
    code, out, _ = run(capsys, "outbox", "replay", str(webhook.pk))
    assert code == 0 and f"replayed 1 dead letter(s): {webhook.pk}" in out
    assert AuditRecord.objects.filter(action="delivery.replay").count() == 1
    code, _, err = run(capsys, "outbox", "replay", str(webhook.pk))
    assert code == 2 and "is pending, not a dead letter" in err
    code, _, err = run(capsys, "outbox", "replay", "999999")
    assert code == 2 and "no delivery 999999" in err
    Delivery.objects.filter(pk=webhook.pk).update(status=DeliveryStatus.DEAD)
    code, out, _ = run(capsys, "outbox", "replay", "--all-dead")
    assert code == 0 and "replayed 1" in out


def test_notify_commands(federation: Federation, capsys: Any, tmp_path: Any) -> None:
    import pysequoia

    fed = federation
    contact = fed.orgs["de"].contacts.get()
    code, secret, _ = run(capsys, "notify", "secret", str(contact.pk))
    assert code == 0 and secret.strip().startswith("whsec_")
    code, again, _ = run(capsys, "notify", "secret", str(contact.pk))
    assert again == secret
    code, rotated, err = run(capsys, "notify", "secret", str(contact.pk), "--rotate")
    assert code == 0 and rotated != secret and "24 hours" in err
    from vcisc.notify.signing import sign

    header = sign([rotated.strip()], b"{}", 100)
    assert verify(rotated.strip(), header, b"{}", now=100)

    bad = tmp_path / "bad.asc"
    bad.write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    code, _, err = run(capsys, "notify", "key", str(contact.pk), "--file", str(bad))
    assert code == 2 and "pgp_key: not an OpenPGP public key" in err
    good = tmp_path / "good.asc"
    good.write_text(
        str(pysequoia.Tsk.generate("Desk <desk@cert-bund.example>").extract_certificate())
    )
    code, out, _ = run(capsys, "notify", "key", str(contact.pk), "--file", str(good))
    assert code == 0 and "now encrypted" in out and ContactKey.objects.count() == 1
    code, out, _ = run(capsys, "notify", "key", str(contact.pk), "--remove")
    assert code == 0 and ContactKey.objects.count() == 0

    code, out, _ = run(
        capsys,
        "notify",
        "settings",
        "CERT-Bund",
        "--email-tlp",
        "amber",
        "--duty-desk",
        str(contact.pk),
    )
    assert code == 0 and '"email_tlp_ceiling": "amber"' in out
    assert DeliverySettings.objects.get(organisation=fed.orgs["de"]).duty_desk == contact
    code, _, err = run(capsys, "notify", "settings", "CERT-Bund", "--webhook-tlp", "red")
    assert code == 2 and "webhook_tlp_ceiling" in err
    code, _, _ = run(capsys, "notify", "settings", "CERT-Bund", "--duty-desk", "desk")
    assert code == 1  # "vcisc: --duty-desk takes a contact id or 'none'"


def test_in_app_notifications_stream_to_the_organisation_only(
    federation: Federation, monkeypatch: Any
) -> None:
    from vcisc.web import live

    fed = federation
    monkeypatch.setattr(live, "LIFETIME_SECONDS", 0.05)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.01)
    # Streams that started before DE was routed the request: their cursor is the newest then.
    started_at = live.latest_notification_id()
    monkeypatch.setattr(live, "latest_notification_id", lambda: started_at)
    rfa = file_request(fed, route_to=("de",))

    async def join(resp: Any) -> str:
        return b"".join([bytes(c) async for c in resp.streaming_content]).decode()

    de_text = async_to_sync(join)(signed_in(fed, "de").get("/events/"))
    fr_text = async_to_sync(join)(signed_in(fed, "fr").get("/events/"))
    assert "event: notification" in de_text and rfa["reference"] in de_text
    assert f'"url":"/requests/{rfa["id"]}/"' in de_text and '"kind":"rfa.routed"' in de_text
    assert "event: notification" not in fr_text and rfa["reference"] not in fr_text
    # Functions the stream uses, directly: nothing for an organisation not addressed.
    events, cursor = live.pending_notifications(fed.users["de"], 0)
    assert [e.data["kind"] for e in events] == ["rfa.routed"] and cursor > 0
    assert live.pending_notifications(fed.users["fr"], 0)[0] == []
    assert live.pending_notifications(fed.users["de"], cursor) == ([], cursor)

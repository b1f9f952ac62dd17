"""Delivery to real receivers on 127.0.0.1: an SMTP server (aiosmtpd) and HTTP receivers that
answer, fail, hang and drop connections. Every notification arrives; failures are retried with
back-off and end as dead letters an operator can replay; content follows the channel's TLP."""

from __future__ import annotations

import json
import time
from typing import Any

import pysequoia
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import Federation
from tests.notify.conftest import drain, hook, worker_settings
from tests.notify.receivers import HttpReceiver, SmtpHandler, free_port, start_smtp
from tests.web.conftest import file_request
from vcisc.audit.chain import verify as verify_chain
from vcisc.audit.models import AuditRecord
from vcisc.notify import services
from vcisc.notify.models import Delivery, DeliveryStatus, OutboxMessage, OutboxStatus
from vcisc.notify.signing import SIGNATURE_HEADER
from vcisc.notify.signing import verify as verify_signature
from vcisc.notify.worker import Worker

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local")]

TITLE = "Ransomware on grid operator SCADA"
Smtp = tuple[SmtpHandler, Controller]


def _audited(kind: str) -> dict[str, Any]:
    """Outcomes of ``kind`` (sent, retry, dead) across the workers' audit records, by id."""
    found: dict[str, Any] = {}
    for rec in AuditRecord.objects.filter(action="delivery.outcomes"):
        found.update((rec.after or {}).get(kind, {}))
    return found


def _deliveries(rfa_id: int, channel: str) -> list[Delivery]:
    return list(Delivery.objects.filter(message__rfa_id=rfa_id, channel=channel))


def test_routing_reaches_every_contact_by_mail_and_webhook(
    federation: Federation, http: HttpReceiver, smtp: Smtp
) -> None:
    fed = federation
    handler, controller = smtp
    contact = hook(fed, "de", f"{http.url}/ok")
    hook(fed, "fr", f"{http.url}/ok")
    rfa = file_request(fed, route_to=("de", "fr"), tlp="green")
    stats = drain(worker_settings(controller.port))
    assert stats.sent == 4 and stats.dead == 0
    # E-mail: to each desk, content in full (GREEN is under the e-mail ceiling), a link back.
    assert sorted(m.recipients[0] for m in handler.mails) == [
        "desk@anssi.example",
        "desk@cert-bund.example",
    ]
    mail = next(m for m in handler.mails if m.recipients == ["desk@cert-bund.example"])
    msg = mail.message
    text = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert msg["Subject"].startswith(f"[TLP:GREEN] {rfa['reference']}")
    assert TITLE in text and f"https://vcisc.test/requests/{rfa['id']}/" in text
    assert TITLE.encode() in mail.data  # readable on the wire, so its absence elsewhere counts
    outbox = OutboxMessage.objects.get(contact=contact)
    assert msg["X-VCISC-Idempotency-Key"] == str(outbox.key)
    assert msg["Message-ID"] == f"<{outbox.key}@localhost>"
    # Webhook: signed over the timestamp and the exact body, with the idempotency key.
    hit = next(h for h in http.hits if json.loads(h.body)["id"] == str(outbox.key))
    assert hit.headers["Idempotency-Key"] == str(outbox.key)
    assert hit.headers["VCISC-Event"] == "rfa.routed"
    secret = services.webhook_secrets([contact])[contact.pk][0]
    verify_signature(secret, hit.headers[SIGNATURE_HEADER], hit.body, now=time.time())
    doc = json.loads(hit.body)
    assert doc["content"] is True and TITLE in doc["text"] and doc["data"]["title"] == TITLE
    # The outbox sums it up; every outcome is audited and the chain holds.
    outbox.refresh_from_db()
    assert outbox.status == OutboxStatus.SENT and outbox.attempts == 2 and outbox.sent_at
    assert sorted(map(int, _audited("sent"))) == sorted(
        Delivery.objects.values_list("pk", flat=True)
    )
    assert verify_chain()[2] is None


def test_a_burst_is_claimed_at_once_not_once_per_finished_send(
    federation: Federation, http: HttpReceiver, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = federation
    _, controller = smtp
    for key in ("de", "fr", "us"):
        hook(fed, key, f"{http.url}/ok")
    rfa = file_request(fed, route_to=("de", "fr", "us"), tlp="green")
    claims: list[int] = []
    claim = Worker._claim

    def counted(self: Worker, limit: int) -> list[Delivery]:
        rows = claim(self, limit)
        claims.append(len(rows))
        return rows

    monkeypatch.setattr(Worker, "_claim", counted)
    # Polling is off in effect: only the burst itself may make the worker claim.
    stats = Worker(worker_settings(controller.port, poll_seconds=30)).run(once=True)
    assert stats.sent == 6 and stats.by_channel == {"email": 3, "webhook": 3}
    assert claims == [6, 0]  # the burst, then one look for more once it was all sent
    deliveries = Delivery.objects.filter(message__rfa_id=rfa["id"])
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert sorted(map(int, _audited("sent"))) == sorted(d.pk for d in deliveries)
    messages = OutboxMessage.objects.filter(rfa_id=rfa["id"])
    assert [(m.status, m.attempts) for m in messages] == [(OutboxStatus.SENT, 2)] * 3
    assert all(m.sent_at for m in messages)
    assert verify_chain()[2] is None


def test_once_delivers_what_is_due_when_it_starts_and_leaves_retries_to_the_next_run(
    federation: Federation, http: HttpReceiver
) -> None:
    hook(federation, "de", f"{http.url}/fail/1")
    rfa = file_request(federation, route_to=("de",))
    ws = worker_settings(None, backoff_seconds=0.001, backoff_max_seconds=0.001)
    first = Worker(ws).run(once=True)
    (delivery,) = _deliveries(rfa["id"], "webhook")
    # The retry fell due at once, but after this run's first claim: it is not this run's work.
    assert first.retried == 1 and first.sent == 0 and len(http.hits) == 1
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    second = Worker(ws).run(once=True)
    assert second.sent == 1 and len(http.delivered()) == 1


def test_content_follows_the_channel_ceiling(
    federation: Federation, http: HttpReceiver, smtp: Smtp
) -> None:
    fed = federation
    handler, controller = smtp
    hook(fed, "de", f"{http.url}/ok")
    rfa = file_request(fed, route_to=("de",))  # TLP:AMBER
    drain(worker_settings(controller.port))
    (mail,) = handler.mails
    assert TITLE.encode() not in mail.data  # AMBER is above the e-mail ceiling (GREEN)
    msg = mail.message
    text = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert msg["Subject"] == (
        f"[TLP:AMBER] {rfa['reference']}: a request for assistance was routed to your organisation"
    )
    assert "TLP:AMBER" in text and f"https://vcisc.test/requests/{rfa['id']}/" in text
    assert "incident-response" not in text  # not even the routing metadata
    (hit,) = http.delivered()
    doc = json.loads(hit.body)
    assert doc["content"] is True and TITLE in doc["text"]  # webhooks may carry AMBER


def test_red_goes_nowhere_in_full_and_an_organisation_may_raise_its_e_mail_ceiling(
    federation: Federation, http: HttpReceiver, smtp: Smtp
) -> None:
    fed = federation
    handler, controller = smtp
    hook(fed, "de", f"{http.url}/ok")
    services.update_delivery_settings(None, fed.orgs["fr"], {"email_tlp_ceiling": "amber"})
    red = file_request(fed, route_to=("de",), tlp="red")
    amber = file_request(fed, route_to=("fr",))
    drain(worker_settings(controller.port))
    (hit,) = http.delivered()
    doc = json.loads(hit.body)
    assert doc["content"] is False and doc["data"] == {} and doc["reference"] == red["reference"]
    assert "TLP:RED" in doc["text"] and "Elering" not in hit.body.decode()
    fr_mail = next(m for m in handler.mails if m.recipients == ["desk@anssi.example"])
    assert TITLE in fr_mail.message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert amber["reference"] in fr_mail.message["Subject"]


def test_pgp_encrypted_mail_carries_content_only_the_key_holder_reads(
    federation: Federation, smtp: Smtp
) -> None:
    fed = federation
    handler, controller = smtp
    secret_key = pysequoia.Tsk.generate("CERT-Bund desk <desk@cert-bund.example>")
    contact = fed.orgs["de"].contacts.get()
    services.set_contact_key(None, contact, str(secret_key.extract_certificate()))
    rfa = file_request(fed, route_to=("de",))  # AMBER: within the PGP ceiling (AMBER+STRICT)
    drain(worker_settings(controller.port))
    (mail,) = handler.mails
    assert TITLE.encode() not in mail.data
    msg = mail.message
    assert msg.get_content_type() == "multipart/encrypted"
    assert msg.get_param("protocol") == "application/pgp-encrypted"
    assert rfa["reference"] in msg["Subject"] and "assistance requested" not in msg["Subject"]
    version, payload = msg.get_payload()  # type: ignore[misc]
    assert version.get_payload().strip() == "Version: 1"
    plain = pysequoia.decrypt(payload.get_payload().encode(), secret_key.decryptor()).bytes
    assert plain is not None and TITLE.encode() in plain
    assert b"assistance requested" in plain  # the real subject, as a protected header


def test_receivers_that_fail_hang_and_drop_are_retried_until_they_answer(
    federation: Federation, http: HttpReceiver
) -> None:
    fed = federation
    hooks = {"de": "fail/2", "fr": "hang/1", "us": "drop/1"}
    for key, path in hooks.items():
        hook(fed, key, f"{http.url}/{path}")
    rfa = file_request(fed, route_to=tuple(hooks))
    stats = drain(worker_settings(None))  # webhooks only: no relay configured
    assert stats.dead == 0 and stats.sent == 3 and stats.retried == 4
    for delivery in _deliveries(rfa["id"], "webhook"):
        assert delivery.status == DeliveryStatus.SENT
    by_path = {
        d.message.contact.webhook_url.rsplit("/", 2)[-2]: d
        for d in _deliveries(rfa["id"], "webhook")
    }
    assert by_path["fail"].attempts == 3 and by_path["hang"].attempts == 2
    assert by_path["drop"].attempts == 2
    # Every attempt of a notification carries the same idempotency key.
    keys: dict[str, set[str]] = {}
    for hit in http.hits:
        keys.setdefault(hit.path, set()).add(hit.headers["Idempotency-Key"])
    assert all(len(k) == 1 for k in keys.values())
    assert len(http.delivered()) == 3
    retries = _audited("retry")
    assert len(retries) == 3  # by delivery: the last retry of each is what the trail keeps
    every_retry = [
        pk
        for rec in AuditRecord.objects.filter(action="delivery.outcomes")
        for pk in (rec.after or {}).get("retry", {})
    ]
    assert len(every_retry) == 4  # each failed attempt is in the trail
    assert any("did not answer within 0.5 s" in r["error"] for r in retries.values())
    # E-mail waits (no relay is configured): not lost, not failed.
    assert all(d.status == DeliveryStatus.PENDING for d in _deliveries(rfa["id"], "email"))


def test_exhausted_and_permanent_failures_become_dead_letters_that_replay(
    federation: Federation, http: HttpReceiver, smtp: Smtp
) -> None:
    fed = federation
    handler, controller = smtp
    hook(fed, "de", f"{http.url}/fail/3", email="refused@cert-bund.example")
    hook(fed, "fr", f"{http.url}/status/404")
    rfa = file_request(fed, route_to=("de", "fr"))
    ws = worker_settings(controller.port, max_attempts=3)
    stats = drain(ws)
    dead = {
        (d.message.organisation.name, d.channel): d for d in Delivery.objects.filter(status="dead")
    }
    assert set(dead) == {("CERT-Bund", "webhook"), ("CERT-Bund", "email"), ("ANSSI", "webhook")}
    assert stats.dead == 3
    assert dead[("CERT-Bund", "webhook")].attempts == 3  # bounded: never retried forever
    assert "500" in dead[("CERT-Bund", "webhook")].last_error
    assert "3 attempts failed" in dead[("CERT-Bund", "webhook")].last_error
    assert dead[("ANSSI", "webhook")].attempts == 1  # a 404 is not retried
    assert "404" in dead[("ANSSI", "webhook")].last_error
    assert "550" in dead[("CERT-Bund", "email")].last_error
    assert dead[("CERT-Bund", "email")].attempts == 1
    assert OutboxMessage.objects.get(contact__organisation=fed.orgs["fr"]).status == "failed"
    # The operator replays the webhook: the receiver has recovered (its 4th answer is 200).
    replayed = services.replay(None, [dead[("CERT-Bund", "webhook")].pk])
    assert replayed[0].status == DeliveryStatus.PENDING and replayed[0].replays == 1
    drain(ws)
    again = Delivery.objects.get(pk=dead[("CERT-Bund", "webhook")].pk)
    assert again.status == DeliveryStatus.SENT and again.attempts == 1
    assert AuditRecord.objects.filter(action="delivery.replay", object_id=str(again.pk)).exists()
    assert len(http.delivered()) == 1
    # FR's e-mail went through; the refused address got nothing.
    assert [m.recipients for m in handler.mails] == [["desk@anssi.example"]]
    assert OutboxMessage.objects.filter(rfa_id=rfa["id"]).count() == 2


def test_replay_refuses_what_is_not_dead(federation: Federation) -> None:
    from vcisc.errors import Conflict, NotFound

    rfa = file_request(federation, route_to=("de",))
    (delivery,) = _deliveries(rfa["id"], "email")
    with pytest.raises(Conflict, match="not a dead letter"):
        services.replay(None, [delivery.pk])
    with pytest.raises(NotFound):
        services.replay(None, [10**9])


def test_an_smtp_server_that_is_down_gets_the_mail_when_it_is_back(
    federation: Federation,
) -> None:
    port = free_port()  # nothing listens here yet
    rfa = file_request(federation, route_to=("de",))
    ws = worker_settings(port, backoff_seconds=0.05, backoff_max_seconds=0.1)
    stats = drain(ws, until=lambda: Delivery.objects.filter(attempts__gte=2).exists())
    assert stats.sent == 0 and stats.retried >= 2
    (delivery,) = _deliveries(rfa["id"], "email")
    assert delivery.status == DeliveryStatus.PENDING and "127.0.0.1" in delivery.last_error
    handler = SmtpHandler()
    controller = start_smtp(handler, port=port)
    try:
        drain(ws)
    finally:
        controller.stop()
    assert [m.recipients for m in handler.mails] == [["desk@cert-bund.example"]]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_a_webhook_into_a_private_network_is_blocked_at_send_time(
    federation: Federation, http: HttpReceiver
) -> None:
    fed = federation
    hook(fed, "de", f"{http.url}/ok")  # allowed when configured …
    rfa = file_request(fed, route_to=("de",))
    drain(worker_settings(None, allowed_networks=()))  # … but the worker's allow-list is empty
    (delivery,) = _deliveries(rfa["id"], "webhook")
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == 1
    assert "blocked" in delivery.last_error and "not a public address" in delivery.last_error
    assert http.hits == []  # the request was never made


def test_a_delivery_claimed_by_a_dead_worker_is_taken_over_after_its_lease(
    federation: Federation, http: HttpReceiver
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    fed = federation
    hook(fed, "de", f"{http.url}/ok")
    rfa = file_request(fed, route_to=("de",))
    (delivery,) = _deliveries(rfa["id"], "webhook")
    # A worker claimed it and died: status "sending", its lease still running.
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENDING,
        attempts=1,
        worker="gone:1",
        lease_until=timezone.now() + timedelta(seconds=60),
    )
    ws = worker_settings(None)
    drain(ws, until=lambda: True)
    assert http.hits == []  # not while the lease runs: that worker might still be sending
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now())
    drain(ws)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 2
    assert len(http.delivered()) == 1
    # On its last allowed attempt the outcome is unknown: dead letter, not a further duplicate.
    rfa2 = file_request(fed, route_to=("fr",), title="Second")
    hook(fed, "fr", f"{http.url}/ok")
    (email,) = _deliveries(rfa2["id"], "email")
    Delivery.objects.filter(pk=email.pk).update(
        status=DeliveryStatus.SENDING, attempts=5, worker="gone:1", lease_until=timezone.now()
    )
    drain(worker_settings(free_port(), max_attempts=5))
    email.refresh_from_db()
    assert email.status == DeliveryStatus.DEAD and "outcome unknown" in email.last_error


def test_starttls_and_authentication(federation: Federation, tmp_path: Any) -> None:
    import shutil
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = auth.login == b"vcisc" and auth.password == b"s3cret-relay-pass"
        return AuthResult(success=ok, handled=False)

    handler = SmtpHandler()
    controller = start_smtp(
        handler,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    try:
        rfa = file_request(federation, route_to=("de",))
        from tests.notify.conftest import smtp_settings

        wrong = smtp_settings(
            controller.port, security="starttls", ca_file=str(cert), username="vcisc", password="no"
        )
        drain(
            worker_settings(None, smtp=wrong),
            until=lambda: Delivery.objects.filter(attempts=1).exists(),
        )
        (delivery,) = _deliveries(rfa["id"], "email")
        assert delivery.status == DeliveryStatus.PENDING  # a relay problem: retried, not dead
        assert "authentication failed" in delivery.last_error
        right = smtp_settings(
            controller.port,
            security="starttls",
            ca_file=str(cert),
            username="vcisc",
            password="s3cret-relay-pass",
        )
        drain(worker_settings(None, smtp=right))
    finally:
        controller.stop()
    assert [m.recipients for m in handler.mails] == [["desk@cert-bund.example"]]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT

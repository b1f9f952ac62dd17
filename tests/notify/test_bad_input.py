"""Bad delivery settings are refused when configured, with a 4xx naming the field."""

from __future__ import annotations

from datetime import timedelta

import pysequoia
import pytest
from django.utils import timezone

from tests.conftest import Federation
from vcisc.audit.models import AuditRecord
from vcisc.errors import Forbidden, Invalid
from vcisc.federation.models import PointOfContact
from vcisc.notify import services
from vcisc.notify.models import ContactKey, WebhookSecret

pytestmark = pytest.mark.django_db


def _contact_body(url: str, org: int) -> dict[str, object]:
    return {
        "organisation_id": org,
        "name": "Hook desk",
        "email": "hooks@cert-bund.example",
        "webhook_url": url,
        "languages": ["de"],
        "time_zone": "Europe/Berlin",
        "on_call": "24/7",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/hook", "is not a public address"),
        ("https://169.254.169.254/latest/meta-data/", "is not a public address"),
        ("https://127.0.0.1:8443/hook", "is not a public address"),
        ("https://[::1]/hook", "is not a public address"),
        ("http://hooks.cert-bund.example/vcisc", "must use https://"),
    ],
)
def test_webhook_urls_into_private_networks_are_refused(
    federation: Federation, url: str, message: str
) -> None:
    de = federation.api("de")
    org = federation.orgs["de"].pk
    resp = de.post("/contacts", _contact_body(url, org))
    assert resp.status_code == 422, resp.content
    assert resp.json()["field"] == "webhook_url" and message in resp.json()["detail"]
    # Changing an existing contact is checked the same way.
    contact = PointOfContact.objects.get(organisation_id=org)
    resp = de.patch(f"/contacts/{contact.pk}", {"webhook_url": url})
    assert resp.status_code == 422 and resp.json()["field"] == "webhook_url"


def test_public_and_allow_listed_webhooks_are_accepted(
    federation: Federation, settings: object
) -> None:
    de = federation.api("de")
    org = federation.orgs["de"].pk
    resp = de.post("/contacts", _contact_body("https://hooks.cert-bund.example/v", org))
    assert resp.status_code == 201, resp.content
    resp = de.post("/contacts", _contact_body("http://127.0.0.1:9000/hook", org) | {"name": "L"})
    assert resp.status_code == 422  # not until the operator allow-lists it
    config = settings.CONFIG  # type: ignore[attr-defined]
    settings.CONFIG = config.model_copy(update={"webhook_allowed_networks": ["127.0.0.1/32"]})  # type: ignore[attr-defined]
    body = _contact_body("http://127.0.0.1:9000/hook", org) | {"name": "Local hook"}
    assert de.post("/contacts", body).status_code == 201


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("hello", "not an OpenPGP public key"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm9wZQ==\n-----END PGP PUBLIC KEY BLOCK-----",
            "not an OpenPGP public key",
        ),
        ("x" * 70_000, "longer than 64 KiB"),
    ],
)
def test_malformed_pgp_keys_are_refused(federation: Federation, text: str, message: str) -> None:
    contact = federation.orgs["de"].contacts.get()
    with pytest.raises(Invalid, match=message) as info:
        services.set_contact_key(None, contact, text)
    assert info.value.extra["field"] == "pgp_key"
    assert not ContactKey.objects.exists()


def test_secret_expired_and_double_keys_are_refused(federation: Federation) -> None:
    contact = federation.orgs["de"].contacts.get()
    tsk = pysequoia.Tsk.generate("Desk <desk@cert-bund.example>")
    with pytest.raises(Invalid, match="secret key"):
        services.set_contact_key(None, contact, str(tsk))
    disguised = pysequoia.armor(bytes(tsk), pysequoia.ArmorKind.PublicKey)
    assert "PRIVATE" not in disguised  # secret key packets under a public-key armor header
    with pytest.raises(Invalid, match="secret key material"):
        services.set_contact_key(None, contact, disguised)
    short = pysequoia.Tsk.generate("Desk <desk@cert-bund.example>", validity_seconds=60)
    with pytest.raises(Invalid, match="expired"):
        services.set_contact_key(
            None,
            contact,
            str(short.extract_certificate()),
            now=timezone.now() + timedelta(days=1),
        )
    two = str(tsk.extract_certificate()) + "\n" + str(short.extract_certificate())
    with pytest.raises(Invalid, match="expected one certificate, found 2"):
        services.set_contact_key(None, contact, two)
    row = services.set_contact_key(None, contact, str(tsk.extract_certificate()))
    assert row.fingerprint == tsk.extract_certificate().fingerprint
    assert AuditRecord.objects.filter(action="contact.pgp-key").count() == 1


def test_webhook_secret_is_created_once_rotated_with_grace_and_never_audited_in_clear(
    federation: Federation,
) -> None:
    contact = federation.orgs["de"].contacts.get()
    first = services.webhook_secrets([contact])[contact.pk]
    assert services.webhook_secrets([contact])[contact.pk] == first  # stable
    new = services.rotate_webhook_secret(None, contact)
    assert services.webhook_secrets([contact])[contact.pk] == (new, first[0])  # both sign
    later = timezone.now() + timedelta(days=2)
    assert services.webhook_secrets([contact], now=later)[contact.pk] == (new,)
    trail = " ".join(
        str(r.before) + str(r.after) for r in AuditRecord.objects.filter(action__contains="secret")
    )
    assert AuditRecord.objects.filter(action="contact.webhook-secret-rotated").exists()
    assert first[0] not in trail and new not in trail and WebhookSecret.objects.count() == 1


def test_delivery_settings_are_checked_and_only_for_own_organisation(
    federation: Federation,
) -> None:
    fed = federation
    with pytest.raises(Invalid, match="never sent over a channel") as info:
        services.update_delivery_settings(None, fed.orgs["de"], {"email_tlp_ceiling": "red"})
    assert info.value.extra["field"] == "email_tlp_ceiling"
    with pytest.raises(Invalid, match="sender_address"):
        services.update_delivery_settings(None, fed.orgs["de"], {"sender_address": "nope"})
    fr_desk = fed.orgs["fr"].contacts.get()
    with pytest.raises(Invalid, match="not an active point of contact of CERT-Bund"):
        services.update_delivery_settings(None, fed.orgs["de"], {"duty_desk_id": fr_desk.pk})
    with pytest.raises(Forbidden):
        services.update_delivery_settings(
            fed.users["fr"], fed.orgs["de"], {"reply_to": "a@b.example"}
        )
    row = services.update_delivery_settings(
        fed.users["de"],
        fed.orgs["de"],
        {"email_tlp_ceiling": "TLP:AMBER", "reply_to": "soc@bund.example"},
    )
    assert row.email_tlp_ceiling == "amber" and row.reply_to == "soc@bund.example"

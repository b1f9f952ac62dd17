"""The directory pages: search and filters, observer restrictions, capability editing rights."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Federation
from tests.web.conftest import html, signed_in
from vcisc.audit.models import AuditRecord
from vcisc.federation import services as fs
from vcisc.federation.models import Capability, PointOfContact

pytestmark = pytest.mark.django_db


def section(page: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">.*?</table>', page, flags=re.S)
    assert match, table_id
    return match.group(0)


@pytest.mark.parametrize("who", ["ee", "de_analyst", "us", "coordinator", "admin"])
def test_directory_shows_everything_to_members(federation: Federation, who: str) -> None:
    page = html(signed_in(federation, who), "/directory/")
    assert 'aria-current="page">Directory</a>' in page
    assert "<td>Estonia</td>" in page and "<td>Armenia</td>" in page
    assert "CERT-Bund" in section(page, "organisations")
    assert "desk@cert-ee.example" in section(page, "contacts")
    caps = section(page, "capabilities")
    assert "Malware analysis and reverse engineering" in caps and "CISA (US)" in caps


def test_observers_see_nations_and_organisations_only(federation: Federation) -> None:
    page = html(signed_in(federation, "am"), "/directory/")
    assert "Observers see nations and organisations only." in page
    assert "<td>Germany</td>" in page and "CERT-Bund" in section(page, "organisations")
    assert 'id="contacts"' not in page and 'id="capabilities"' not in page
    assert "desk@" not in page and "Malware analysis" not in page
    assert 'name="service"' not in page and 'name="language"' not in page
    # Filters on contacts and capabilities reveal nothing either.
    page = html(signed_in(federation, "am"), "/directory/?service=incident-response&language=en")
    assert "desk@" not in page and "Incident response" not in page


def test_organisation_search_and_filters(federation: Federation) -> None:
    client = signed_in(federation, "fr")
    orgs = section(html(client, "/directory/?q=bund"), "organisations")
    assert "CERT-Bund" in orgs and "CERT-EE" not in orgs and "(1 found)" in orgs
    orgs = section(html(client, "/directory/?nation=DE"), "organisations")
    assert "CERT-Bund" in orgs and "BKA Cyber" in orgs and "ANSSI" not in orgs
    orgs = section(html(client, "/directory/?kind=law-enforcement"), "organisations")
    assert "BKA Cyber" in orgs and "CERT-Bund" not in orgs
    orgs = section(html(client, "/directory/?q=zzz"), "organisations")
    assert "No organisation matches." in orgs
    # An unknown filter value is reported and ignored, not an error page.
    page = html(client, "/directory/?kind=spies")
    assert "Some filters were not understood" in page and "CERT-EE" in page


def test_capability_and_contact_filters(federation: Federation) -> None:
    client = signed_in(federation, "ee")
    caps = section(html(client, "/directory/?service=malware-analysis"), "capabilities")
    assert "ANSSI" in caps and "CISA" not in caps and "(1 found)" in caps
    caps = section(html(client, "/directory/?language=uk"), "capabilities")
    assert "CERT-UA" in caps and "ANSSI" not in caps
    caps = section(html(client, "/directory/?sector=health"), "capabilities")
    # ANSSI declares health; capabilities without sector limits count for any sector.
    assert "ANSSI" in caps and "Cyber threat intelligence" in caps and "CERT-UA" not in caps
    page = html(client, "/directory/?nation=US")
    assert "CERT-Bund" not in section(page, "capabilities")
    assert "desk@cisa.example" in section(page, "contacts")
    assert "desk@cert-ee.example" not in section(page, "contacts")


def test_lists_are_paginated_and_keep_the_filters(federation: Federation) -> None:
    for i in range(30):
        fs.create_organisation(None, name=f"Extra CERT {i:02d}", kind="cert", nation_code="FR")
    client = signed_in(federation, "ee")
    page = html(client, "/directory/?nation=FR")
    orgs = section(page, "organisations")
    assert "(31 found)" in orgs and "Page 1 of 2" in page
    assert 'href="?nation=FR&amp;org_page=2"' in page
    page2 = html(client, "/directory/?nation=FR&org_page=2")
    assert "Page 2 of 2" in page2 and "Extra CERT 29" in section(page2, "organisations")
    assert "Extra CERT 29" not in orgs


def edit_url(fed: Federation, key: str) -> str:
    return f"/directory/organisations/{fed.orgs[key].pk}/capabilities/"


def cap_post(cap: Capability, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form": f"capability-{cap.pk}",
        "depth": cap.depth,
        "description": cap.description,
        "sectors": ", ".join(cap.sectors),
        "languages": ", ".join(cap.languages),
        "max_concurrent": cap.max_concurrent,
        "lead_time_hours": cap.lead_time_hours,
        "remote": "on" if cap.remote else "",
        "on_site": "on" if cap.on_site else "",
    }
    data.update(changes)
    return {("form" if k == "form" else f"cap-{cap.pk}-{k}"): v for k, v in data.items()}


def test_own_liaison_edits_capabilities_and_it_is_audited(federation: Federation) -> None:
    fed = federation
    client = signed_in(fed, "de")
    page = html(client, "/directory/")
    assert f'href="{edit_url(fed, "de")}"' in page
    assert f'href="{edit_url(fed, "fr")}"' not in page
    page = html(client, edit_url(fed, "de"))
    assert "Capabilities of CERT-Bund" in page and "Industrial control systems" in page
    cap = Capability.objects.get(organisation=fed.orgs["de"], service_type="incident-response")
    resp = client.post(edit_url(fed, "de"), cap_post(cap, max_concurrent=7, languages="de, EN, fr"))
    assert resp.status_code == 302 and resp["Location"] == edit_url(fed, "de")
    cap.refresh_from_db()
    assert cap.max_concurrent == 7 and cap.languages == ["de", "en", "fr"]
    record = AuditRecord.objects.filter(
        action="update", object_type="federation.capability", object_id=str(cap.pk)
    ).get()
    assert record.actor == fed.users["de"].email
    assert record.before["max_concurrent"] == 3 and record.after["max_concurrent"] == 7
    assert "saved." in html(client, edit_url(fed, "de"))


def test_liaison_edits_on_call_hours_and_adds_a_capability(federation: Federation) -> None:
    fed = federation
    client = signed_in(fed, "de")
    poc = PointOfContact.objects.get(organisation=fed.orgs["de"])
    resp = client.post(
        edit_url(fed, "de"),
        {
            "form": f"contact-{poc.pk}",
            f"poc-{poc.pk}-on_call": "mon-fri 08:00-18:00",
            f"poc-{poc.pk}-time_zone": "Europe/Berlin",
        },
    )
    assert resp.status_code == 302
    poc.refresh_from_db()
    assert (poc.on_call, poc.time_zone) == ("mon-fri 08:00-18:00", "Europe/Berlin")
    assert AuditRecord.objects.filter(
        action="update", object_type="federation.pointofcontact", object_id=str(poc.pk)
    ).exists()
    resp = client.post(
        edit_url(fed, "de"),
        {
            "form": "new",
            "new-service_type": "network-monitoring",
            "new-depth": "basic",
            "new-max_concurrent": "2",
            "new-lead_time_hours": "48",
            "new-remote": "on",
        },
    )
    assert resp.status_code == 302
    assert Capability.objects.filter(
        organisation=fed.orgs["de"], service_type="network-monitoring", depth="basic"
    ).exists()


def test_errors_are_next_to_the_field_and_keep_the_input(federation: Federation) -> None:
    fed = federation
    client = signed_in(fed, "de")
    poc = PointOfContact.objects.get(organisation=fed.orgs["de"])
    resp = client.post(
        edit_url(fed, "de"),
        {
            "form": f"contact-{poc.pk}",
            f"poc-{poc.pk}-on_call": "whenever we feel like it",
            f"poc-{poc.pk}-time_zone": "UTC",
        },
    )
    assert resp.status_code == 422
    page = resp.content.decode()
    assert "Not saved." in page and 'value="whenever we feel like it"' in page
    assert re.search(r'field--error">.*?on_call', page, flags=re.S)
    poc.refresh_from_db()
    assert poc.on_call == "24/7"

    cap = Capability.objects.get(organisation=fed.orgs["de"], service_type="incident-response")
    resp = client.post(edit_url(fed, "de"), cap_post(cap, sectors="energy, moon-mining"))
    assert resp.status_code == 422
    page = resp.content.decode()
    assert "moon-mining" in page and "unknown value" in page
    assert re.search(rf'field--error">\s*<label for="id_cap-{cap.pk}-sectors"', page)
    # A rule spanning fields (the model's constraint) comes back as the service words it.
    resp = client.post(edit_url(fed, "de"), cap_post(cap, remote="", on_site=""))
    assert resp.status_code in (409, 422)
    cap.refresh_from_db()
    assert cap.sectors == ["energy"] and cap.remote
    assert not AuditRecord.objects.filter(
        action="update", object_id__in=[str(cap.pk), str(poc.pk)]
    ).exists()


@pytest.mark.parametrize("who", ["fr", "de_analyst", "am", "us"])
def test_others_may_not_edit(federation: Federation, who: str) -> None:
    fed = federation
    client = signed_in(fed, who)
    assert client.get(edit_url(fed, "de")).status_code == 403
    cap = Capability.objects.get(organisation=fed.orgs["de"], service_type="incident-response")
    resp = client.post(edit_url(fed, "de"), cap_post(cap, max_concurrent=99))
    assert resp.status_code == 403
    cap.refresh_from_db()
    assert cap.max_concurrent == 3
    assert not AuditRecord.objects.filter(action="update", object_id=str(cap.pk)).exists()


@pytest.mark.parametrize("who", ["admin", "coordinator"])
def test_operators_may_edit_any_organisation(federation: Federation, who: str) -> None:
    fed = federation
    client = signed_in(fed, who)
    cap = Capability.objects.get(organisation=fed.orgs["fr"], service_type="malware-analysis")
    resp = client.post(edit_url(fed, "fr"), cap_post(cap, lead_time_hours=4))
    assert resp.status_code == 302
    cap.refresh_from_db()
    assert cap.lead_time_hours == 4


def test_unknown_organisation_or_form_is_404(federation: Federation) -> None:
    client = signed_in(federation, "admin")
    assert client.get("/directory/organisations/999999/capabilities/").status_code == 404
    assert client.get(f"/directory/organisations/{2**64}/capabilities/").status_code == 404
    # A capability of another organisation cannot be edited through this one's page.
    fr_cap = Capability.objects.filter(organisation=federation.orgs["fr"]).first()
    assert fr_cap is not None
    resp = client.post(edit_url(federation, "de"), cap_post(fr_cap))
    assert resp.status_code == 404

"""Filing a request through the form: the service validates, its errors land on the field."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.conftest import Federation
from tests.web.conftest import html, signed_in
from vcisc.assistance.models import RequestForAssistance

pytestmark = pytest.mark.django_db


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "DDoS on the national e-ID service",
        "affected_entity": "Population register",
        "description": "Volumetric attack since 06:00 UTC.",
        "rsit_class": "availability",
        "rsit_type": "ddos",
        "sector": "public-administration",
        "severity": "3",
        "services_needed": ["incident-response", "network-monitoring"],
        "urgency": "hours",
        "tlp": "amber",
        "languages": "et, EN",
        "excluded_nations": "fr",
        "needed_by": "2030-01-31T18:30",
        "intent": "submit",
    }
    data.update(overrides)
    return data


class _Controls(HTMLParser):
    """Collects form controls and the ids that labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "label" and attr.get("for"):
            self.labelled.add(str(attr["for"]))
        if tag in ("input", "select", "textarea") and attr.get("type") not in ("hidden",):
            self.controls.append(attr)


def test_every_input_of_the_form_has_a_label(federation: Federation) -> None:
    page = html(signed_in(federation, "ee"), "/requests/new/")
    parser = _Controls()
    parser.feed(page)
    assert len(parser.controls) > 20
    unlabelled = [c for c in parser.controls if c.get("id") not in parser.labelled]
    assert unlabelled == []
    # Vocabulary choices: RSIT types grouped by class, NIS2 subsectors, TLP labels.
    assert '<optgroup label="availability">' in page
    assert '<option value="energy/electricity">' in page
    assert '<option value="amber+strict">TLP:AMBER+STRICT</option>' in page
    assert "<legend" in page  # checkbox groups are fieldsets with a legend


def test_a_service_error_appears_next_to_its_field_with_input_kept(
    federation: Federation,
) -> None:
    client = signed_in(federation, "ee")
    resp = client.post("/requests/new/", _form(rsit_type="infected-system"))
    assert resp.status_code == 422
    page = resp.content.decode()
    # The error is the service's, attached to the rsit_type field and announced by it.
    error = re.search(r'<ul class="errorlist" id="id_rsit_type_error"><li>(.*?)</li>', page)
    assert error is not None and "is not a type of availability" in error.group(1)
    select = re.search(r'<select name="rsit_type"[^>]*>', page)
    assert select is not None
    assert 'aria-invalid="true"' in select.group(0)
    assert 'aria-describedby="id_rsit_type_helptext id_rsit_type_error"' in select.group(0)
    assert "The request was not filed." in page
    # What the user typed is still there.
    assert 'value="DDoS on the national e-ID service"' in page
    assert "Volumetric attack since 06:00 UTC.</textarea>" in page
    assert '<option value="availability" selected>' in page
    assert 'value="et, EN"' in page
    assert re.search(r'value="network-monitoring"[^>]*checked', page)
    assert not RequestForAssistance.objects.exists()


def test_a_form_error_keeps_the_input_too(federation: Federation) -> None:
    resp = signed_in(federation, "ee").post("/requests/new/", _form(title="", severity="9"))
    assert resp.status_code == 422
    page = resp.content.decode()
    assert 'id="id_title_error"' in page and 'id="id_severity_error"' in page
    assert 'value="Population register"' in page
    assert not RequestForAssistance.objects.exists()


def test_a_valid_request_is_filed_and_opens_its_page(federation: Federation) -> None:
    client = signed_in(federation, "ee")
    resp = client.post("/requests/new/", _form(excluded_organisations=[federation.orgs["us"].pk]))
    assert resp.status_code == 302
    rfa = RequestForAssistance.objects.get()
    assert resp["Location"] == f"/requests/{rfa.pk}/"
    assert rfa.state == "submitted" and rfa.requester == federation.orgs["ee"]
    assert rfa.severity == 3 and rfa.languages == ["et", "en"]
    assert rfa.excluded_nations == ["FR"]
    assert rfa.needed_by is not None and rfa.needed_by.isoformat() == "2030-01-31T18:30:00+00:00"
    assert rfa.excluded_organisations == [federation.orgs["us"].pk]
    page = client.get(resp["Location"]).content.decode()
    assert f"Request {rfa.reference} submitted to the secretariat." in page
    assert "DDoS on the national e-ID service" in page and "CISA" in page
    assert '<span class="tlp tlp-amber">TLP:AMBER</span>' in page
    # The secretariat now has it in its queue.
    assert rfa.reference in html(signed_in(federation, "coordinator"), "/")


def test_save_as_draft(federation: Federation) -> None:
    resp = signed_in(federation, "ee").post("/requests/new/", _form(intent="draft"))
    assert resp.status_code == 302
    assert RequestForAssistance.objects.get().state == "draft"


def test_who_may_file_is_the_services_decision(federation: Federation) -> None:
    for who in ("coordinator", "ee_analyst", "am"):
        resp = signed_in(federation, who).post("/requests/new/", _form())
        assert resp.status_code == 403, who
        page = resp.content.decode()
        assert "this needs the liaison role" in page.split('id="form-errors"')[1], who
        assert 'value="DDoS on the national e-ID service"' in page
    assert not RequestForAssistance.objects.exists()

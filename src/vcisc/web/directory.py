"""The federation directory in the console: nations, organisations, and — for everyone but
observers — points of contact and capabilities; and the page where an organisation's liaison (or
an admin / coordinator) keeps its capabilities and its contacts' on-call hours up to date.

Reads follow the directory API's rules (observers see nations and organisations only); every
write goes through :mod:`vcisc.federation.services`, which checks rights and audits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from vcisc import authz
from vcisc.errors import DomainError, Forbidden, Invalid, NotFound
from vcisc.federation import services
from vcisc.federation.models import (
    Capability,
    Nation,
    Organisation,
    OrgKind,
    PointOfContact,
    Role,
    User,
)
from vcisc.http import MAX_DB_INT
from vcisc.vocabulary import Depth, ServiceType
from vcisc.web.forms import CommaListField, ServiceForm
from vcisc.web.views import console_page, request_user

__all__ = [
    "CapabilityForm",
    "ContactHoursForm",
    "NewCapabilityForm",
    "capabilities_edit",
    "directory",
    "may_manage",
    "sees_contacts",
]

PER_PAGE = 25


def sees_contacts(user: User) -> bool:
    """The directory API's rule: observers see nations and organisations only."""
    return not (authz.is_observer_only(user) and not authz.is_secretariat(user))


def may_manage(user: User, org: Organisation) -> bool:
    """Mirror of the services' rule, to decide what the page offers (the services enforce it):
    the organisation's own liaison officers, an admin, or a secretariat coordinator."""
    if not user.is_active:
        return False
    if user.has_role(Role.ADMIN) or authz.is_coordinator(user):
        return True
    return user.organisation_id == org.pk and user.has_role(Role.LIAISON)


# --- the directory ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One paginated list, with links to its neighbouring pages that keep the other filters."""

    page: Page[Any]
    prev_url: str | None
    next_url: str | None


def _listing(request: HttpRequest, items: Any, key: str) -> Listing:
    paginator = Paginator(items, PER_PAGE)
    page = paginator.get_page(request.GET.get(key))

    def url(number: int) -> str:
        query = request.GET.copy()
        query[key] = str(number)
        return "?" + query.urlencode()

    return Listing(
        page,
        url(page.previous_page_number()) if page.has_previous() else None,
        url(page.next_page_number()) if page.has_next() else None,
    )


class DirectoryFilter(forms.Form):
    """The directory's search and filters (GET)."""

    q = forms.CharField(required=False, max_length=100, label="Organisation name")
    nation = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind"), *OrgKind.choices], label="Organisation kind"
    )
    service = forms.ChoiceField(
        required=False, choices=[("", "Any service"), *ServiceType.choices], label="Service type"
    )
    sector = forms.CharField(required=False, max_length=60)
    language = forms.CharField(required=False, max_length=3, help_text="e.g. en, de")

    def __init__(self, *args: Any, observer: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        nations = Nation.objects.filter(active=True).order_by("name")
        nation_field = self.fields["nation"]
        assert isinstance(nation_field, forms.ChoiceField)
        nation_field.choices = [("", "Any nation")] + [
            (n.code, f"{n.name} ({n.code})") for n in nations
        ]
        if observer:
            for name in ("service", "sector", "language"):
                del self.fields[name]


def _clean_filters(form: DirectoryFilter) -> dict[str, str]:
    if form.is_valid():
        return {k: (v or "").strip() for k, v in form.cleaned_data.items()}
    # Invalid filters are shown with their errors and ignored.
    return {}


@console_page
@login_required
@require_safe
def directory(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    contacts_visible = sees_contacts(user)
    form = DirectoryFilter(request.GET or None, observer=not contacts_visible)
    f = _clean_filters(form) if request.GET else {}
    nation, q, kind = f.get("nation", ""), f.get("q", ""), f.get("kind", "")

    nations = Nation.objects.filter(active=True).order_by("name")
    orgs = Organisation.objects.select_related("nation").filter(active=True)
    if q:
        orgs = orgs.filter(Q(name__icontains=q) | Q(short_name__icontains=q))
    if nation:
        orgs = orgs.filter(nation__code=nation)
    if kind:
        orgs = orgs.filter(kind=kind)
    orgs = orgs.order_by("name")
    org_list = list(orgs)
    context: dict[str, Any] = {
        "nav": "directory",
        "page_tlp": None,
        "form": form,
        "nations": nations,
        "organisations": _listing(request, org_list, "org_page"),
        "manageable": {o.pk for o in org_list if may_manage(user, o)},
        "sees_contacts": contacts_visible,
    }
    if contacts_visible:
        language, service, sector = f.get("language", ""), f.get("service", ""), f.get("sector", "")
        contacts_qs = PointOfContact.objects.select_related("organisation__nation").filter(
            active=True, organisation__active=True
        )
        caps_qs = Capability.objects.select_related("organisation__nation").filter(
            active=True, organisation__active=True
        )
        if nation:
            contacts_qs = contacts_qs.filter(organisation__nation__code=nation)
            caps_qs = caps_qs.filter(organisation__nation__code=nation)
        if service:
            caps_qs = caps_qs.filter(service_type=service)
        contacts = list(contacts_qs.order_by("organisation__name", "name"))
        caps = list(caps_qs.order_by("organisation__name", "service_type"))
        # JSON list membership is filtered in Python, as the API does (portable across DBs).
        if language:
            lang = language.lower()
            contacts = [c for c in contacts if lang in (c.languages or [])]
            caps = [c for c in caps if lang in (c.languages or [])]
        if sector:
            top = sector.split("/", 1)[0]
            caps = [c for c in caps if not c.sectors or sector in c.sectors or top in c.sectors]
        context["contacts"] = _listing(request, contacts, "poc_page")
        context["capabilities"] = _listing(request, caps, "cap_page")
        context["service_labels"] = dict(ServiceType.choices)
    return render(request, "web/directory.html", context)


# --- editing an organisation's capabilities and contacts' hours ---------------------------------


class CapabilityForm(ServiceForm):
    """The fields of a capability the page edits (the services validate the vocabularies)."""

    depth = forms.ChoiceField(choices=Depth.choices)
    description = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )
    sectors = CommaListField(
        required=False,
        max_items=40,
        help_text="NIS2 sectors, e.g. energy, energy/electricity; empty for any sector.",
    )
    languages = CommaListField(
        required=False, normalise=lambda s: s.strip().lower(), help_text="e.g. en, de"
    )
    max_concurrent = forms.IntegerField(
        min_value=1, max_value=1000, label="Concurrent engagements at most"
    )
    lead_time_hours = forms.IntegerField(min_value=0, max_value=24 * 90, label="Lead time (hours)")
    remote = forms.BooleanField(required=False)
    on_site = forms.BooleanField(required=False, label="On site")

    FIELDS: tuple[str, ...] = (
        "depth",
        "description",
        "sectors",
        "languages",
        "max_concurrent",
        "lead_time_hours",
        "remote",
        "on_site",
    )

    @classmethod
    def initial_of(cls, cap: Capability) -> dict[str, Any]:
        return {name: getattr(cap, name) for name in cls.FIELDS}

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.FIELDS}


class NewCapabilityForm(CapabilityForm):
    service_type = forms.ChoiceField(choices=ServiceType.choices, label="Service type")

    field_order = ["service_type", *CapabilityForm.FIELDS]
    FIELDS: tuple[str, ...] = ("service_type", *CapabilityForm.FIELDS)


class ContactHoursForm(ServiceForm):
    on_call = forms.CharField(
        max_length=300, label="On-call hours", help_text='e.g. "24/7" or "mon-fri 08:00-18:00"'
    )
    time_zone = forms.CharField(max_length=64, label="Time zone", help_text="e.g. Europe/Tallinn")

    FIELDS = ("on_call", "time_zone")


def _organisation(org_id: int) -> Organisation:
    org = None
    if org_id <= MAX_DB_INT:
        org = Organisation.objects.select_related("nation").filter(pk=org_id).first()
    if org is None:
        raise Http404("organisation not found")
    return org


def _save(
    request: HttpRequest, user: User, org: Organisation, form: ServiceForm, kind: str, obj_id: int
) -> tuple[bool, int]:
    """Apply one posted form through the services; (saved, status)."""
    try:
        if kind == "capability":
            assert isinstance(form, CapabilityForm)
            cap = Capability.objects.filter(pk=obj_id, organisation=org).first()
            if cap is None:
                raise NotFound("capability not found")
            services.update(user, cap, form.changes())
            messages.success(request, f"Capability {ServiceType(cap.service_type).label} saved.")
        elif kind == "contact":
            poc = PointOfContact.objects.filter(pk=obj_id, organisation=org).first()
            if poc is None:
                raise NotFound("contact not found")
            services.update(user, poc, {k: form.cleaned_data[k] for k in ContactHoursForm.FIELDS})
            messages.success(request, f"On-call hours of {poc.name} saved.")
        else:
            assert isinstance(form, NewCapabilityForm)
            cap = services.create_capability(user, organisation_id=org.pk, **form.changes())
            messages.success(request, f"Capability {ServiceType(cap.service_type).label} added.")
    except NotFound:
        raise Http404("not found") from None
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    except Invalid as exc:
        form.add_domain_error(exc)
        return False, exc.status
    except DomainError as exc:
        form.add_error(None, exc.message)
        messages.error(request, exc.message)
        return False, exc.status
    return True, 200


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def capabilities_edit(request: HttpRequest, org_id: int) -> HttpResponse:
    user = request_user(request)
    org = _organisation(org_id)
    if not may_manage(user, org):
        raise PermissionDenied("only the organisation's liaison officers or an admin may edit")
    caps = list(Capability.objects.filter(organisation=org).order_by("service_type", "pk"))
    contacts = list(PointOfContact.objects.filter(organisation=org).order_by("name", "pk"))
    cap_forms: dict[int, CapabilityForm] = {
        c.pk: CapabilityForm(initial=CapabilityForm.initial_of(c), prefix=f"cap-{c.pk}")
        for c in caps
    }
    poc_forms: dict[int, ContactHoursForm] = {
        p.pk: ContactHoursForm(
            initial={"on_call": p.on_call, "time_zone": p.time_zone}, prefix=f"poc-{p.pk}"
        )
        for p in contacts
    }
    new_form = NewCapabilityForm(
        initial={
            "depth": Depth.ADVANCED,
            "max_concurrent": 1,
            "lead_time_hours": 24,
            "remote": True,
        },
        prefix="new",
    )
    status = 200
    if request.method == "POST":
        target = request.POST.get("form", "")
        kind, _, raw_id = target.partition("-")
        obj_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else 0
        form: ServiceForm
        if kind == "capability" and obj_id in cap_forms:
            form = cap_forms[obj_id] = CapabilityForm(request.POST, prefix=f"cap-{obj_id}")
        elif kind == "contact" and obj_id in poc_forms:
            form = poc_forms[obj_id] = ContactHoursForm(request.POST, prefix=f"poc-{obj_id}")
        elif kind == "new":
            form = new_form = NewCapabilityForm(request.POST, prefix="new")
        else:
            raise Http404("no such form")
        status = 422
        if form.is_valid():
            saved, status = _save(request, user, org, form, kind, obj_id)
            if saved:
                return redirect("web:directory-capabilities", org_id=org.pk)
    return render(
        request,
        "web/directory_capabilities.html",
        {
            "nav": "directory",
            "page_tlp": None,
            "organisation": org,
            "capabilities": [(c, cap_forms[c.pk], f"capability-{c.pk}") for c in caps],
            "contacts": [(p, poc_forms[p.pk], f"contact-{p.pk}") for p in contacts],
            "new_form": new_form,
            "service_labels": dict(ServiceType.choices),
            "secretariat": org.is_secretariat,
        },
        status=status,
    )

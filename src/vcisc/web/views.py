"""The console's pages: thin views over :mod:`vcisc.authz` (every read) and the services
(every write), as the API routes are (STYLE.md habits 1–3).

A request reaches a template only as :func:`vcisc.assistance.api.rfa_out` renders it for the
user — the dictionary the API returns, whose content fields exist only with content access — so a
page cannot show what the API would withhold. Templates never see the model itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_safe

from vcisc import authz
from vcisc.assistance import services
from vcisc.assistance.api import rfa_out, timeline_out
from vcisc.assistance.deadlines import Step
from vcisc.assistance.lifecycle import TERMINAL, RfaState
from vcisc.assistance.models import RequestForAssistance, Routing
from vcisc.engagements.models import Participant
from vcisc.errors import DomainError, Invalid, NotFound
from vcisc.federation.models import Organisation, User
from vcisc.tlp import Tlp, strictest
from vcisc.vocabulary import (
    LEGAL_REQUIREMENTS,
    EuImpact,
    ServiceType,
    Severity,
    Urgency,
    top_sector,
)
from vcisc.web.forms import RequestForm

__all__ = ["console_page", "home", "request_detail", "request_new"]

#: States in the secretariat's triage queue (DOMAIN.md §3: validation before routing).
TRIAGE_STATES = (RfaState.SUBMITTED, RfaState.TRIAGE, RfaState.NEEDS_INFO)
#: Rows per table on the home page; the caption says when there are more.
LIST_LIMIT = 100
#: Ids beyond a 64-bit column are absent, not a database error (see vcisc.http.DbInt).
_MAX_DB_INT = 2**63 - 1

#: Pages load only their own stylesheet, post only to themselves and are never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_STEP_LABELS = {
    Step.TRIAGE: "Triage",
    Step.FIRST_OFFER: "First offer",
    Step.ACCEPTANCE: "Acceptance",
}

View = Callable[..., HttpResponseBase]


def console_page(view: View) -> View:
    """Headers every console page carries: pages may hold TLP:RED content, so no cache keeps
    them; and the policy forbids anything the pages do not load themselves."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        add_never_cache_headers(response)
        return response

    return wrapper


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only signed-in users through"
    return user


# --- presentation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """One deadline as a page shows it (DOMAIN.md §3; states from assistance.deadlines)."""

    step: str
    label: str
    due: datetime
    at: datetime | None
    state: str

    @property
    def breached(self) -> bool:
        return self.state == "breached"


def _present(data: dict[str, Any]) -> dict[str, Any]:
    """Add display values to :func:`rfa_out`'s dictionary (labels, ordered clocks)."""
    clocks = [
        Clock(step.value, _STEP_LABELS[step], **data["deadlines"][step.value])
        for step in Step
        if step.value in data["deadlines"]
    ]
    shown = dict(data)
    shown.update(
        content=data["access"] == "content",
        tlp=Tlp(data["tlp"]),
        clocks=clocks,
        breached=any(c.breached for c in clocks),
        severity_label=Severity(data["severity"]).label,
        urgency_label=Urgency(data["urgency"]).label,
        services_labels=[ServiceType(s).label for s in data["services_needed"]],
    )
    if shown["content"]:
        shown["legal_labels"] = [LEGAL_REQUIREMENTS.get(r, r) for r in data["legal_requirements"]]
        shown["eu_impact_label"] = EuImpact(data["eu_impact"]).label if data["eu_impact"] else ""
    return shown


def _rows(user: User, qs: QuerySet[RequestForAssistance], now: datetime) -> list[dict[str, Any]]:
    page = list(qs.select_related("engagement")[:LIST_LIMIT])
    viewer = authz.Viewer.of(user, [r.pk for r in page])
    return [_present(rfa_out(user, rfa, now, viewer)) for rfa in page]


@dataclass(frozen=True)
class Table:
    """A list of requests for a page, with the total when it shows only the first rows."""

    rows: list[dict[str, Any]]
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


def _table(user: User, qs: QuerySet[RequestForAssistance], now: datetime) -> Table:
    rows = _rows(user, qs, now)
    total = len(rows) if len(rows) < LIST_LIMIT else qs.count()
    return Table(rows, total)


def _page_marking(tables: Iterable[Table]) -> Tlp | None:
    """The strictest TLP of the requests on a page (None when it shows none)."""
    labels = [row["tlp"] for table in tables for row in table.rows]
    return strictest(labels) if labels else None


@dataclass(frozen=True)
class Picture:
    """Open requests by sector and severity (sectors as rows, severities 5…0 as columns)."""

    severities: list[tuple[int, str]]
    rows: list[tuple[str, list[int], int]]
    column_totals: list[int]
    total: int


def _federation_picture(qs: QuerySet[RequestForAssistance]) -> Picture:
    """Counted over ``qs`` only, which must already be scoped to what the user may see."""
    counts: Counter[tuple[str, int]] = Counter()
    grouped = (
        qs.exclude(state__in=[*TERMINAL, RfaState.DRAFT])
        .order_by()
        .values_list("sector", "severity")
        .annotate(n=Count("pk"))
    )
    for sector, severity, n in grouped:
        counts[(top_sector(sector), severity)] += n
    severities = [(s.value, s.label) for s in reversed(Severity)]
    sectors = sorted({sector for sector, _ in counts})
    rows = [(sector, [counts[(sector, sev)] for sev, _ in severities]) for sector in sectors]
    rows_with_totals = sorted(
        ((sector, cells, sum(cells)) for sector, cells in rows), key=lambda r: (-r[2], r[0])
    )
    column_totals = [sum(counts[(sector, sev)] for sector in sectors) for sev, _ in severities]
    return Picture(severities, rows_with_totals, column_totals, sum(column_totals))


# --- pages --------------------------------------------------------------------------------------


@console_page
@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Per role: the secretariat coordinator's triage queue and federation picture; for everyone
    else, their organisation's requests and those routed to it."""
    user = _user(request)
    now = timezone.now()
    visible = authz.visible_requests(user)
    context: dict[str, Any] = {"nav": "home", "now": now}
    if authz.is_coordinator(user):
        queue = _table(
            user,
            visible.filter(state__in=TRIAGE_STATES).order_by("-severity", "triage_due", "pk"),
            now,
        )
        context.update(
            view="coordinator",
            queue=queue,
            picture=_federation_picture(visible),
            page_tlp=_page_marking([queue]),
        )
    elif user.organisation is not None and not authz.is_secretariat(user):
        org = user.organisation
        # Partitions of what authz already lets the user see, not a second visibility rule.
        routed = Routing.objects.filter(rfa=OuterRef("pk"), organisation=org)
        taking_part = Participant.objects.filter(engagement__rfa=OuterRef("pk"), organisation=org)
        ours = _table(user, visible.filter(requester=org), now)
        theirs = _table(
            user,
            visible.exclude(requester=org).filter(Exists(routed) | Exists(taking_part)),
            now,
        )
        context.update(
            view="organisation",
            organisation=org,
            ours=ours,
            routed=theirs,
            page_tlp=_page_marking([ours, theirs]),
        )
    else:
        context.update(view="none", page_tlp=None)
    return render(request, "web/home.html", context)


@console_page
@login_required
@require_safe
def request_detail(request: HttpRequest, rfa_id: int) -> HttpResponse:
    """One request: metadata always, content only with content access, its clocks, the
    timeline entries and offers the user may read. Not involved: 404, as for no such id."""
    user = _user(request)
    if rfa_id > _MAX_DB_INT:
        raise Http404("request not found")
    try:
        rfa = authz.get_rfa(user, rfa_id)
    except NotFound:
        raise Http404("request not found") from None
    now = timezone.now()
    shown = _present(rfa_out(user, rfa, now))
    if shown["content"]:
        excluded = shown["excluded_organisations"]
        names = dict(Organisation.objects.filter(pk__in=excluded).values_list("pk", "name"))
        shown["excluded_organisation_names"] = [names.get(pk, f"#{pk}") for pk in excluded]
    return render(
        request,
        "web/request_detail.html",
        {
            "rfa": shown,
            "timeline": timeline_out(user, rfa),
            "offers": list(authz.offers_visible(user, rfa)),
            "page_tlp": shown["tlp"],
            "now": now,
        },
    )


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """File a request for assistance through :func:`services.create_rfa` (the one write path).

    The service decides who may file and what is valid; its errors come back next to the field
    they name, with the user's input kept.
    """
    user = _user(request)
    status = 200
    if request.method == "POST":
        form = RequestForm(request.POST, requester=user.organisation)
        status = 422
        if form.is_valid():
            submit = request.POST.get("intent") == "submit"
            try:
                rfa = services.create_rfa(user, form.rfa_data(), submit=submit)
            except Invalid as exc:
                form.add_domain_error(exc)
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                done = "submitted to the secretariat" if submit else "saved as a draft"
                messages.success(request, f"Request {rfa.reference} {done}.")
                return redirect("web:request-detail", rfa_id=rfa.pk)
    else:
        form = RequestForm(requester=user.organisation)
    return render(
        request,
        "web/request_new.html",
        {"form": form, "nav": "new", "page_tlp": None},
        status=status,
    )

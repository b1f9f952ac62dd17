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
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from vcisc import authz
from vcisc.assistance import services
from vcisc.assistance.api import rfa_out, timeline_out
from vcisc.assistance.deadlines import Step
from vcisc.assistance.lifecycle import (
    TERMINAL,
    Action,
    OfferAction,
    OfferState,
    RfaState,
    allowed_offer_actions,
)
from vcisc.assistance.models import Offer, RequestForAssistance, Routing
from vcisc.engagements import services as workspace
from vcisc.engagements.api import engagement_out
from vcisc.engagements.indicators import add_indicator, correlations_visible, import_indicators
from vcisc.engagements.models import (
    AfterActionReview,
    Engagement,
    EngagementMember,
    Indicator,
    Note,
    Participant,
    SituationReport,
    Task,
    TaskOutcome,
)
from vcisc.errors import DomainError, Invalid, NotFound
from vcisc.federation.models import Organisation, Role, User
from vcisc.feeds.services import feed_matches_visible
from vcisc.matching.services import engagement_load, match
from vcisc.oncall import on_call_at
from vcisc.sharing.reports import ImportMode
from vcisc.tlp import Tlp, strictest
from vcisc.vocabulary import (
    LEGAL_REQUIREMENTS,
    EuImpact,
    ServiceType,
    Severity,
    Urgency,
    top_sector,
)
from vcisc.web.forms import (
    IndicatorForm,
    IndicatorImportForm,
    MemberForm,
    NoteForm,
    OfferForm,
    RequestForm,
    ReviewForm,
    RouteForm,
    ServiceForm,
    SitrepForm,
    TaskForm,
)

__all__ = [
    "console_page",
    "engagement_detail",
    "engagement_indicator",
    "engagement_indicator_import",
    "engagement_member",
    "engagement_note",
    "engagement_review",
    "engagement_sitrep",
    "engagement_task",
    "engagement_task_outcome",
    "home",
    "offer_act",
    "request_detail",
    "request_edit",
    "request_new",
    "request_offer",
    "request_route",
    "request_transition",
    "request_user",
]

#: States in the secretariat's triage queue (DOMAIN.md §3: validation before routing).
TRIAGE_STATES = (RfaState.SUBMITTED, RfaState.TRIAGE, RfaState.NEEDS_INFO)
#: Rows per table on the home page; the caption says when there are more.
LIST_LIMIT = 100

#: Pages load only their own stylesheet and script (no inline code), connect only to themselves
#: (live updates), post only to themselves and are never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
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


def request_user(request: HttpRequest) -> User:
    """The signed-in person behind a console request (after ``login_required``)."""
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


def _page_marking(tables: Iterable[Table], more: Iterable[str] = ()) -> Tlp | None:
    """The strictest TLP of the requests on a page (None when it shows none)."""
    labels = [row["tlp"] for table in tables for row in table.rows] + [Tlp(t) for t in more]
    return strictest(labels) if labels else None


def _any_exercise(tables: Iterable[Table]) -> bool:
    """Whether a page lists exercise requests (it then carries the EXERCISE banner)."""
    return any(row["is_exercise"] for table in tables for row in table.rows)


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
    user = request_user(request)
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
            page_exercise=_any_exercise([queue]),
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
        offers = _our_offers(user, org)
        engagements = _our_engagements(user, org)
        context.update(
            view="organisation",
            organisation=org,
            ours=ours,
            routed=theirs,
            our_offers=offers,
            our_engagements=engagements,
            capacity=_our_capacity(org, now),
            manages_capabilities=user.has_role(Role.LIAISON),
            page_exercise=_any_exercise([ours, theirs]),
            page_tlp=_page_marking(
                [ours, theirs],
                [o.rfa.tlp for o in offers] + [e["tlp"] for e in engagements],
            ),
        )
    else:
        context.update(view="none", page_tlp=None)
    return render(request, "web/home.html", context)


def _our_offers(user: User, org: Organisation) -> list[Offer]:
    """Our organisation's offers on requests we may still see, newest first."""
    return list(
        authz.visible_offers(user)
        .filter(organisation=org)
        .select_related("rfa")
        .order_by("-created_at", "-pk")[:LIST_LIMIT]
    )


def _our_engagements(user: User, org: Organisation) -> list[dict[str, Any]]:
    """Engagements our organisation takes part in (as requester or helper), open ones first."""
    rows = (
        Participant.objects.filter(organisation=org, engagement__in=authz.visible_engagements(user))
        .select_related("engagement__rfa")
        .order_by("engagement__closed_at", "-engagement__opened_at", "pk")[:LIST_LIMIT]
    )
    return [
        {
            "id": p.engagement_id,
            "reference": p.engagement.rfa.reference,
            "rfa_id": p.engagement.rfa_id,
            "state": p.engagement.rfa.state,
            "tlp": p.engagement.rfa.tlp,
            "role": p.role,
            "opened_at": p.engagement.opened_at,
            "closed_at": p.engagement.closed_at,
        }
        for p in rows
    ]


@dataclass(frozen=True)
class Capacity:
    """What our organisation has declared, and how much of it is taken now (the same figures
    matching scores: accepted or active offers on open requests against ``max_concurrent``)."""

    in_progress: int
    capabilities: list[dict[str, Any]]
    on_call_now: int
    contacts: int


def _our_capacity(org: Organisation, now: datetime) -> Capacity:
    in_progress = engagement_load([org.pk]).get(org.pk, 0)
    capabilities = [
        {
            "label": ServiceType(c.service_type).label,
            "depth": c.depth,
            "max": c.max_concurrent,
            "free": max(c.max_concurrent - in_progress, 0),
            "sectors": c.sectors,
        }
        for c in org.capabilities.filter(active=True).order_by("service_type", "pk")
    ]
    contacts = list(org.contacts.filter(active=True).values_list("on_call", "time_zone"))
    on_call = sum(on_call_at(spec, zone, now) for spec, zone in contacts)
    return Capacity(in_progress, capabilities, on_call, len(contacts))


def _visible_rfa(user: User, rfa_id: UUID) -> RequestForAssistance:
    """The request through authz, or the one 404 for absent and hidden alike."""
    try:
        return authz.get_rfa(user, rfa_id)
    except NotFound:
        raise Http404("request not found") from None


def _status_of(request: HttpRequest, exc: DomainError, form: ServiceForm | None = None) -> int:
    """A service's refusal as the page shows it: next to the field (Invalid, with a form), else
    as a message; the status is the error's own (403, 409, 422). NotFound stays a plain 404."""
    if isinstance(exc, NotFound):
        raise Http404("not found") from None
    if isinstance(exc, Invalid) and form is not None:
        form.add_domain_error(exc)
    else:
        messages.error(request, exc.message)
    return exc.status


#: Lifecycle actions a page offers as buttons (route and accept-offer have their own forms).
_ACTION_LABELS = {
    Action.SUBMIT: "Submit to the secretariat",
    Action.START_TRIAGE: "Start triage",
    Action.REQUEST_INFO: "Request more information",
    Action.PROVIDE_INFO: "Information provided: back to triage",
    Action.REJECT: "Reject",
    Action.ACTIVATE: "Activate the engagement",
    Action.REPORT: "Move to reporting",
    Action.CLOSE: "Close",
    Action.EXPIRE: "Expire",
    Action.WITHDRAW: "Withdraw the request",
}
_REASON_ACTIONS = {Action.REQUEST_INFO, Action.REJECT, Action.WITHDRAW}
_BY_REQUESTER = {
    Action.SUBMIT,
    Action.PROVIDE_INFO,
    Action.WITHDRAW,
    Action.REPORT,
    Action.CLOSE,
    Action.ACTIVATE,
}
_BY_COORDINATOR = {
    Action.START_TRIAGE,
    Action.REQUEST_INFO,
    Action.REJECT,
    Action.EXPIRE,
    Action.ACTIVATE,
}
_ROUTABLE = (RfaState.TRIAGE, RfaState.CIRCULATED)
_OFFERABLE = (RfaState.CIRCULATED, RfaState.OFFER_ACCEPTED, RfaState.ACTIVE)
_OPEN_OFFERS = (OfferState.PROPOSED, OfferState.ACCEPTED, OfferState.ACTIVE)


@dataclass(frozen=True)
class ActionButton:
    action: str
    label: str
    needs_reason: bool


def _actions_for(user: User, shown: dict[str, Any]) -> list[ActionButton]:
    """The state's allowed actions that the user's involvement permits (the service decides)."""
    permitted: set[Action] = set()
    if "requester" in shown["involvement"] and user.has_role(Role.LIAISON):
        permitted |= _BY_REQUESTER
    if authz.is_coordinator(user):
        permitted |= _BY_COORDINATOR
    return [
        ActionButton(act.value, _ACTION_LABELS[act], act in _REASON_ACTIONS)
        for act in map(Action, shown["allowed_actions"])
        if act in permitted and act in _ACTION_LABELS
    ]


def _route_candidates(rfa: RequestForAssistance, now: datetime) -> tuple[list[Any], Any]:
    """Ranked matches for the coordinator, each with whether it was already routed."""
    result = match(rfa, now=now)
    routed = set(Routing.objects.filter(rfa=rfa).values_list("organisation_id", flat=True))
    rows = [
        {"candidate": c, "routed": c.organisation_id in routed, "total": c.score}
        for c in result.candidates
    ]
    return rows, result.excluded


def _render_request(
    request: HttpRequest,
    rfa: RequestForAssistance,
    *,
    status: int = 200,
    route_form: RouteForm | None = None,
    offer_form: OfferForm | None = None,
    failed: dict[str, str] | None = None,
) -> HttpResponse:
    user = request_user(request)
    rfa = _visible_rfa(user, rfa.pk)  # fresh after a write, and still through authz
    now = timezone.now()
    shown = _present(rfa_out(user, rfa, now))
    if shown["content"]:
        excluded = shown["excluded_organisations"]
        names = dict(Organisation.objects.filter(pk__in=excluded).values_list("pk", "name"))
        shown["excluded_organisation_names"] = [names.get(pk, f"#{pk}") for pk in excluded]
    offers = list(authz.offers_visible(user, rfa))
    involvement = set(shown["involvement"])
    liaison = user.has_role(Role.LIAISON)
    # Each offer with the offering organisation's buttons (the service decides again).
    offer_rows = [
        (
            o,
            [
                (act.value, _OFFERER_LABELS[act])
                for act in allowed_offer_actions(OfferState(o.state))
                if act in _OFFERER_LABELS
            ]
            if liaison and o.organisation_id == user.organisation_id
            else [],
        )
        for o in offers
    ]
    context: dict[str, Any] = {
        "rfa": shown,
        "timeline": timeline_out(user, rfa),
        "offers": offers,
        "page_tlp": shown["tlp"],
        "page_exercise": shown["is_exercise"],
        "now": now,
        "actions": _actions_for(user, shown),
        "failed": failed or {},
        "decides_offers": "requester" in involvement and liaison,
        "can_edit": "requester" in involvement and liaison and rfa.state in _EDITABLE,
        "offer_rows": offer_rows,
        "acts_on_own_offers": any(own for _, own in offer_rows),
    }
    if authz.is_coordinator(user) and rfa.state in _ROUTABLE:
        rows, excluded = _route_candidates(rfa, now)
        choices = [
            (row["candidate"].organisation_id, row["candidate"].organisation_name)
            for row in rows
            if not row["routed"]
        ]
        if route_form is None:
            route_form = RouteForm(candidates=choices)
        else:
            route_form.set_candidates(choices)
        context.update(matches=rows, match_excluded=excluded, route_form=route_form)
    own_open = any(
        o.organisation_id == user.organisation_id and o.state in _OPEN_OFFERS for o in offers
    )
    if "routed" in involvement and liaison and rfa.state in _OFFERABLE and not own_open:
        context["offer_form"] = offer_form or OfferForm(
            initial={
                "team_size": 2,
                "available_from": now,
                "available_until": now + timedelta(days=7),
                "remote": True,
            }
        )
    return render(request, "web/request_detail.html", context, status=status)


@console_page
@login_required
@require_safe
def request_detail(request: HttpRequest, rfa_id: UUID) -> HttpResponse:
    """One request: metadata always, content only with content access, its clocks, the
    timeline entries and offers the user may read, and the actions the user may take now.
    Not involved: 404, as for no such id."""
    return _render_request(request, _visible_rfa(request_user(request), rfa_id))


def _done(request: HttpRequest, text: str, rfa_id: UUID) -> HttpResponse:
    messages.success(request, text)
    return redirect("web:request-detail", rfa_id=rfa_id)


@console_page
@login_required
@require_POST
def request_transition(request: HttpRequest, rfa_id: UUID) -> HttpResponse:
    """Fire a lifecycle action through :func:`services.transition`."""
    user = request_user(request)
    rfa = _visible_rfa(user, rfa_id)
    action = request.POST.get("action", "")[:40]
    reason = request.POST.get("reason", "")
    try:
        rfa = services.transition(user, rfa.pk, action, reason=reason)
    except DomainError as exc:
        status = _status_of(request, exc)
        failed = {"action": action, "reason": reason}
        return _render_request(request, rfa, status=status, failed=failed)
    return _done(request, f"{rfa.reference}: {action} done; the request is {rfa.state}.", rfa.pk)


@console_page
@login_required
@require_POST
def request_route(request: HttpRequest, rfa_id: UUID) -> HttpResponse:
    """Route to picked organisations or to the top N matches through :func:`services.route`."""
    user = request_user(request)
    rfa = _visible_rfa(user, rfa_id)
    # Any id may be picked; the service checks each one (exclusions, legal requirements).
    form = RouteForm(
        request.POST, candidates=[(v, v) for v in request.POST.getlist("organisations")]
    )
    if not form.is_valid():
        return _render_request(request, rfa, status=422, route_form=form)
    top = request.POST.get("intent") == "top"
    try:
        result = services.route(
            user,
            rfa.pk,
            None if top else form.cleaned_data["organisations"],
            top=form.cleaned_data["top"] or 5,
        )
    except DomainError as exc:
        status = _status_of(request, exc, form)
        return _render_request(request, rfa, status=status, route_form=form)
    names = ", ".join(r.organisation.name for r in result.routed)
    return _done(request, f"{result.rfa.reference} routed to {names}.", rfa.pk)


@console_page
@login_required
@require_POST
def request_offer(request: HttpRequest, rfa_id: UUID) -> HttpResponse:
    """A routed organisation offers help through :func:`services.create_offer`."""
    user = request_user(request)
    rfa = _visible_rfa(user, rfa_id)
    form = OfferForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            services.create_offer(user, rfa.pk, form.service_data())
        except DomainError as exc:
            status = _status_of(request, exc, form)
        else:
            return _done(request, f"Your offer on {rfa.reference} was sent.", rfa.pk)
    return _render_request(request, rfa, status=status, offer_form=form)


#: What each offer action says once done (the requester decides; the offerer moves its own).
_OFFER_DONE = {
    OfferAction.ACCEPT: "accepted",
    OfferAction.DECLINE: "declined",
    OfferAction.WITHDRAW: "withdrawn",
    OfferAction.START: "started",
    OfferAction.COMPLETE: "completed",
}
#: The offering organisation's own actions, as the buttons name them.
_OFFERER_LABELS = {
    OfferAction.WITHDRAW: "Withdraw our offer",
    OfferAction.START: "Start work",
    OfferAction.COMPLETE: "Mark our work complete",
}


@console_page
@login_required
@require_POST
def offer_act(request: HttpRequest, offer_id: UUID, action: str) -> HttpResponse:
    """Accept / decline (the requester) or withdraw / start / complete (the offering
    organisation) through :func:`services.offer_action`, which decides who may."""
    user = request_user(request)
    try:
        offer = authz.get_offer(user, offer_id)
    except NotFound:
        raise Http404("offer not found") from None
    reason = request.POST.get("reason", "")
    try:
        services.offer_action(user, offer.pk, action, reason=reason)
    except DomainError as exc:
        status = _status_of(request, exc)
        return _render_request(request, offer.rfa, status=status)
    verb = _OFFER_DONE.get(OfferAction(action), action)
    return _done(request, f"Offer of {offer.organisation.name} {verb}.", offer.rfa_id)


# --- engagement workspace -----------------------------------------------------------------------


def _visible_engagement(user: User, engagement_id: UUID) -> Engagement:
    try:
        return authz.get_engagement(user, engagement_id)
    except NotFound:
        raise Http404("engagement not found") from None


def _participant_choices(eng: Engagement) -> list[tuple[int, str]]:
    return [
        (p.organisation_id, p.organisation.name)
        for p in Participant.objects.filter(engagement=eng).select_related("organisation")
    ]


def _colleague_choices(user: User, eng: Engagement) -> list[tuple[int, str]]:
    """Active users of the user's organisation who are not yet named members."""
    if user.organisation_id is None:
        return []
    named = EngagementMember.objects.filter(engagement=eng).values("user_id")
    return [
        (pk, email)
        for pk, email in User.objects.filter(organisation_id=user.organisation_id, is_active=True)
        .exclude(pk__in=named)
        .order_by("email")
        .values_list("pk", "email")
    ]


def _render_engagement(
    request: HttpRequest,
    eng: Engagement,
    *,
    status: int = 200,
    **forms: ServiceForm,
) -> HttpResponse:
    user = request_user(request)
    eng = _visible_engagement(user, eng.pk)
    rfa = eng.rfa
    data = engagement_out(user, eng)
    content = data["access"] == "content"
    context: dict[str, Any] = {
        "eng": data,
        "content": content,
        "rfa_state": rfa.state,
        "timeline": timeline_out(user, rfa),
        "page_tlp": Tlp(rfa.tlp),
        "page_exercise": rfa.is_exercise,
        "outcomes": TaskOutcome.choices,
    }
    if content:
        visible = authz.item_filter(user, eng)

        def items(model: type[Any]) -> list[Any]:
            return list(
                model.objects.filter(visible, engagement=eng)
                .select_related("organisation", "author")
                .order_by("created_at", "pk")
            )

        review = AfterActionReview.objects.filter(engagement=eng).first()
        names = dict(_participant_choices(eng))
        tasks = items(Task)
        for task in tasks:
            task.assignee_name = names.get(task.assignee_id, "")
        context.update(
            tasks=tasks,
            notes=items(Note),
            indicators=items(Indicator),
            correlations=correlations_visible(user, eng),
            feed_matches=feed_matches_visible(user, eng),
            sitreps=items(SituationReport),
            review=review if review and authz.item_visible(user, eng, review.tlp) else None,
        )
        writes = rfa.state in workspace.OPEN_STATES and (
            user.has_role(Role.LIAISON) or user.has_role(Role.ANALYST)
        )
        if writes:
            context.update(
                task_form=forms.get("task_form")
                or TaskForm(participants=_participant_choices(eng)),
                note_form=forms.get("note_form") or NoteForm(),
                indicator_form=forms.get("indicator_form") or IndicatorForm(),
                import_form=forms.get("import_form") or IndicatorImportForm(),
                sitrep_form=forms.get("sitrep_form") or SitrepForm(),
            )
        if user.has_role(Role.LIAISON):
            colleagues = _colleague_choices(user, eng)
            if colleagues or "member_form" in forms:
                context["member_form"] = forms.get("member_form") or MemberForm(
                    colleagues=colleagues
                )
        if (
            rfa.state == RfaState.REPORTING
            and rfa.requester_id == user.organisation_id
            and user.has_role(Role.LIAISON)
            and review is None
        ):
            context["review_form"] = forms.get("review_form") or ReviewForm()
        # A form that came back with errors is shown again, whatever the state now is.
        context.update(forms)
    return render(request, "web/engagement_detail.html", context, status=status)


@console_page
@login_required
@require_safe
def engagement_detail(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    """The workspace: participants and timeline for all who may see the engagement; tasks,
    notes, SITREPs and the review for participants only (TLP:RED items for named members)."""
    return _render_engagement(request, _visible_engagement(request_user(request), engagement_id))


def _workspace_write(
    request: HttpRequest,
    engagement_id: UUID,
    form: ServiceForm,
    form_name: str,
    write: Callable[[User, UUID, dict[str, Any]], Any],
    done: str,
) -> HttpResponse:
    user = request_user(request)
    eng = _visible_engagement(user, engagement_id)
    status = 422
    if form.is_valid():
        try:
            write(user, eng.pk, form.service_data())
        except DomainError as exc:
            status = _status_of(request, exc, form)
        else:
            messages.success(request, done)
            return redirect("web:engagement-detail", engagement_id=eng.pk)
    return _render_engagement(request, eng, status=status, **{form_name: form})


@console_page
@login_required
@require_POST
def engagement_task(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    eng = _visible_engagement(request_user(request), engagement_id)
    form = TaskForm(request.POST, participants=_participant_choices(eng))
    return _workspace_write(
        request, engagement_id, form, "task_form", workspace.add_task, "Task added."
    )


@console_page
@login_required
@require_POST
def engagement_member(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    """A participant's liaison officer names a colleague through :func:`workspace.add_member`."""
    user = request_user(request)
    eng = _visible_engagement(user, engagement_id)
    form = MemberForm(request.POST, colleagues=_colleague_choices(user, eng))

    def write(actor: User, engagement_id: UUID, data: dict[str, Any]) -> Any:
        return workspace.add_member(actor, engagement_id, data["user_id"])

    return _workspace_write(request, engagement_id, form, "member_form", write, "Member named.")


@console_page
@login_required
@require_POST
def engagement_note(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    return _workspace_write(
        request,
        engagement_id,
        NoteForm(request.POST),
        "note_form",
        workspace.add_note,
        "Note added.",
    )


@console_page
@login_required
@require_POST
def engagement_indicator(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    return _workspace_write(
        request,
        engagement_id,
        IndicatorForm(request.POST),
        "indicator_form",
        add_indicator,
        "Indicator added.",
    )


@console_page
@login_required
@require_POST
def engagement_indicator_import(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    """A bulk import; what it did (created, duplicates, skipped) is told in the message."""
    done: list[str] = []

    def write(actor: User, engagement_id: UUID, data: dict[str, Any]) -> Any:
        mode = ImportMode.SKIP_INVALID if data["skip_invalid"] else ImportMode.ATOMIC
        result, report = import_indicators(
            actor, engagement_id, fmt=data["format"], content=data["content"], mode=mode
        )
        done.append(
            f"{len(result.created)} indicator(s) added, {result.duplicates} already there, "
            f"{len(report.skipped)} invalid object(s) skipped, "
            f"{result.correlations} shared with other engagements, "
            f"{result.feed_matches} found in federation feeds."
        )
        return result

    form = IndicatorImportForm(request.POST)
    response = _workspace_write(request, engagement_id, form, "import_form", write, "Imported.")
    if done:
        messages.info(request, done[0])
    return response


@console_page
@login_required
@require_POST
def engagement_sitrep(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    return _workspace_write(
        request,
        engagement_id,
        SitrepForm(request.POST),
        "sitrep_form",
        workspace.add_sitrep,
        "Situation report added.",
    )


@console_page
@login_required
@require_POST
def engagement_review(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    return _workspace_write(
        request,
        engagement_id,
        ReviewForm(request.POST),
        "review_form",
        workspace.submit_review,
        "After-action review submitted; the request can now be closed.",
    )


@console_page
@login_required
@require_POST
def engagement_task_outcome(
    request: HttpRequest, engagement_id: UUID, task_id: UUID
) -> HttpResponse:
    """Change a task's outcome through :func:`workspace.update_task`."""
    user = request_user(request)
    eng = _visible_engagement(user, engagement_id)
    outcome = request.POST.get("outcome", "")[:20]
    try:
        task = workspace.update_task(user, eng.pk, task_id, {"outcome": outcome})
    except DomainError as exc:
        status = _status_of(request, exc)
        return _render_engagement(request, eng, status=status)
    messages.success(request, f"Task #{task.pk} is {task.outcome}.")
    return redirect("web:engagement-detail", engagement_id=eng.pk)


_EDITABLE = (RfaState.DRAFT, RfaState.NEEDS_INFO)


def _initial_from(shown: dict[str, Any]) -> dict[str, Any]:
    """The form's initial values from :func:`rfa_out`'s content fields."""
    initial = {name: shown.get(name) for name in RequestForm.base_fields if name in shown}
    for name in ("languages", "ics_vendors", "excluded_nations"):
        initial[name] = ", ".join(shown.get(name) or [])
    initial["excluded_organisations"] = shown.get("excluded_organisations") or []
    return initial


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def request_edit(request: HttpRequest, rfa_id: UUID) -> HttpResponse:
    """The requester edits a draft, or a request the secretariat sent back for more
    information, through :func:`services.update_rfa`; saving a request in needs-info can also
    hand it back to triage (``provide-info``)."""
    user = request_user(request)
    rfa = _visible_rfa(user, rfa_id)
    if rfa.requester_id != user.organisation_id or not user.has_role(Role.LIAISON):
        raise PermissionDenied("only the requesting organisation's liaison officers edit it")
    if rfa.state not in _EDITABLE:
        messages.error(request, f"{rfa.reference} is {rfa.state} and can no longer be edited.")
        return redirect("web:request-detail", rfa_id=rfa.pk)
    shown = rfa_out(user, rfa, timezone.now())
    status = 200
    if request.method == "POST":
        form = RequestForm(request.POST, requester=user.organisation)
        if rfa.submitted_at is not None:
            form.fields["severity"].disabled = True
            form.fields["severity"].initial = rfa.severity
        status = 422
        if form.is_valid():
            data = form.rfa_data()
            if rfa.submitted_at is not None:
                data.pop("severity", None)
            intent = request.POST.get("intent", "save")
            try:
                with transaction.atomic():
                    services.update_rfa(user, rfa.pk, data)
                    if intent == "submit":
                        action = (
                            Action.SUBMIT if rfa.state == RfaState.DRAFT else Action.PROVIDE_INFO
                        )
                        services.transition(user, rfa.pk, action.value)
            except Invalid as exc:
                form.add_domain_error(exc)
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                done = "saved" if intent != "submit" else "saved and sent to the secretariat"
                messages.success(request, f"{rfa.reference} {done}.")
                return redirect("web:request-detail", rfa_id=rfa.pk)
    else:
        form = RequestForm(initial=_initial_from(shown), requester=user.organisation)
        if rfa.submitted_at is not None:
            form.fields["severity"].disabled = True
    return render(
        request,
        "web/request_new.html",
        {
            "form": form,
            "editing": rfa,
            "nav": "",
            "page_tlp": Tlp(rfa.tlp),
            "severity_fixed": rfa.submitted_at is not None,
        },
        status=status,
    )


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """File a request for assistance through :func:`services.create_rfa` (the one write path).

    The service decides who may file and what is valid; its errors come back next to the field
    they name, with the user's input kept.
    """
    user = request_user(request)
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

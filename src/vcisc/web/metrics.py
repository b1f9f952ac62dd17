"""The metrics page: response times, requests by sector / severity / service, offers and
engagements per nation — each figure computed only over what :mod:`vcisc.authz` lets the user
see (``visible_requests``, ``visible_offers``, ``visible_engagements``), so that an organisation's
numbers never include a request it is not involved in.

Charts are inline SVG from :mod:`vcisc.web.charts`; each comes with its numbers in a table.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from vcisc import authz
from vcisc.assistance.lifecycle import RfaState
from vcisc.assistance.metrics import per_request
from vcisc.engagements.models import Participant
from vcisc.federation.models import User
from vcisc.vocabulary import ServiceType, Severity, top_sector
from vcisc.web import charts
from vcisc.web.views import console_page

__all__ = ["MetricsData", "Table", "collect", "metrics"]

#: The response-time steps the page shows (assistance.metrics.STEPS names), with their labels.
STEPS = {
    "triage": "Time to triage",
    "first_offer": "Time to first offer",
    "acceptance": "Time to acceptance",
}


def iso_week(moment: datetime) -> str:
    """``2026-W07`` (ISO 8601 week of the year)."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class MetricsData:
    """The numbers behind the page, all over the user's visible requests only."""

    requests: int = 0
    hours: dict[str, list[float]] = field(default_factory=dict)
    weekly: dict[str, dict[str, float | None]] = field(default_factory=dict)  # week -> step
    by_sector: Counter[str] = field(default_factory=Counter)
    by_severity: Counter[int] = field(default_factory=Counter)
    by_service: Counter[str] = field(default_factory=Counter)
    offers: Counter[str] = field(default_factory=Counter)  # nation code -> offers
    engagements: Counter[str] = field(default_factory=Counter)  # nation code -> engagements


def collect(user: User) -> MetricsData:
    visible = authz.visible_requests(user)
    data = MetricsData()
    rfas = list(visible.exclude(state=RfaState.DRAFT))
    data.requests = len(rfas)
    submitted = {r.pk: r.submitted_at for r in rfas if r.submitted_at is not None}
    for rfa in rfas:
        data.by_sector[top_sector(rfa.sector)] += 1
        data.by_severity[rfa.severity] += 1
        for service in rfa.services_needed or []:
            data.by_service[str(service)] += 1
    for offer in authz.visible_offers(user).exclude(rfa__state=RfaState.DRAFT):
        nation = offer.organisation.nation
        data.offers[nation.code if nation else "—"] += 1

    per_week: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    data.hours = {step: [] for step in STEPS}
    for row in per_request(visible.exclude(state=RfaState.DRAFT)):
        at = submitted.get(row.rfa_id)
        for step in STEPS:
            hours = row.hours[step]
            if hours is None:
                continue
            data.hours[step].append(hours)
            if at is not None:
                per_week[iso_week(at)][step].append(hours)
    for week in sorted(per_week):
        data.weekly[week] = {
            step: (round(statistics.median(v), 3) if (v := per_week[week][step]) else None)
            for step in STEPS
        }

    pairs = (
        Participant.objects.filter(engagement__in=authz.visible_engagements(user))
        .values_list("organisation__nation__code", "engagement_id")
        .distinct()
    )
    for code, _ in set(pairs):
        data.engagements[code or "—"] += 1
    return data


@dataclass(frozen=True)
class Table:
    """A chart's numbers as a data table."""

    caption: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    id: str
    heading: str
    svg: SafeString
    table: Table


def _svg(text: str) -> SafeString:
    # Every label in ``text`` was escaped by vcisc.web.charts.esc.
    return mark_safe(text)  # noqa: S308


def _counts_figure(
    fig_id: str, heading: str, what: str, items: list[tuple[str, int]], unit_label: str
) -> Figure:
    labels = [label for label, _ in items]
    values = [float(n) for _, n in items]
    svg = charts.bar_chart(
        chart_id=f"chart-{fig_id}",
        title=heading,
        desc=f"Bar chart: {unit_label} {what}. " + "; ".join(f"{label}: {n}" for label, n in items),
        labels=labels,
        series=[(unit_label, values)],
    )
    table = Table(
        heading,
        [what.removeprefix("by ").capitalize(), unit_label.capitalize()],
        [[label, str(n)] for label, n in items],
    )
    return Figure(fig_id, heading, _svg(svg), table)


def figures(data: MetricsData) -> list[Figure]:
    result: list[Figure] = []
    # Response times: distributions.
    groups = [(STEPS[step], data.hours[step]) for step in STEPS]
    rows = []
    for label, values in groups:
        s = charts.summarise(values)
        if s is None:
            rows.append([label, "0", "–", "–", "–", "–", "–"])
        else:
            rows.append(
                [label, str(s.n)]
                + [charts.fmt(v) for v in (s.minimum, s.q1, s.median, s.q3, s.maximum)]
            )
    result.append(
        Figure(
            "times",
            "Response times (hours from submission)",
            _svg(
                charts.box_chart(
                    chart_id="chart-times",
                    title="Response times (hours from submission)",
                    desc="Box plot per step: whiskers from minimum to maximum, box from the "
                    "first to the third quartile, thick line at the median. "
                    + "; ".join(f"{r[0]}: n={r[1]}, median {r[4]} h" for r in rows),
                    groups=groups,
                )
            ),
            Table(
                "Response times in hours",
                [
                    "Step",
                    "Requests",
                    "Minimum",
                    "First quartile",
                    "Median",
                    "Third quartile",
                    "Maximum",
                ],
                rows,
            ),
        )
    )
    # Trend: median per ISO week of submission.
    weeks = list(data.weekly)
    series = [(STEPS[step], [data.weekly[w][step] for w in weeks]) for step in STEPS]
    trend_rows = [
        [w] + [("–" if (v := data.weekly[w][step]) is None else charts.fmt(v)) for step in STEPS]
        for w in weeks
    ]
    result.append(
        Figure(
            "trend",
            "Median response time per week of submission",
            _svg(
                charts.line_chart(
                    chart_id="chart-trend",
                    title="Median response time per ISO week of submission",
                    desc=f"Line chart over {len(weeks)} week(s), one line per step; "
                    "the table below lists every value.",
                    x_labels=weeks,
                    series=series,
                )
            ),
            Table(
                "Median hours per ISO week of submission",
                ["Week", *STEPS.values()],
                trend_rows,
            ),
        )
    )
    sectors = sorted(data.by_sector.items(), key=lambda kv: (-kv[1], kv[0]))
    result.append(_counts_figure("sector", "Requests by sector", "by sector", sectors, "requests"))
    severities = [
        (Severity(value).label, data.by_severity[value])
        for value in sorted(data.by_severity, reverse=True)
    ]
    result.append(
        _counts_figure("severity", "Requests by severity", "by severity", severities, "requests")
    )
    services = [
        (ServiceType(s).label if s in ServiceType.values else s, n)
        for s, n in sorted(data.by_service.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    result.append(
        _counts_figure(
            "service", "Requests by service type", "by service type", services, "requests"
        )
    )
    nations = sorted(set(data.offers) | set(data.engagements))
    offers = [float(data.offers[n]) for n in nations]
    engagements = [float(data.engagements[n]) for n in nations]
    result.append(
        Figure(
            "nations",
            "Offers and engagements per nation",
            _svg(
                charts.bar_chart(
                    chart_id="chart-nations",
                    title="Offers and engagements per nation",
                    desc="Grouped bar chart per nation: offers made, engagements taken part in. "
                    + "; ".join(
                        f"{n}: {data.offers[n]} offers, {data.engagements[n]} engagements"
                        for n in nations
                    ),
                    labels=nations,
                    series=[("Offers", offers), ("Engagements", engagements)],
                )
            ),
            Table(
                "Offers and engagements per nation",
                ["Nation", "Offers", "Engagements"],
                [[n, str(data.offers[n]), str(data.engagements[n])] for n in nations],
            ),
        )
    )
    return result


@console_page
@login_required
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User), "login_required lets only signed-in users through"
    data = collect(user)
    return render(
        request,
        "web/metrics.html",
        {"nav": "metrics", "page_tlp": None, "data": data, "figures": figures(data)},
    )

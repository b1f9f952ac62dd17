"""The console's pages, mounted at ``/`` (names in the ``web`` namespace)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from vcisc.web import live, views
from vcisc.web.directory import capabilities_edit, directory
from vcisc.web.metrics import metrics

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        views.console_page(
            auth_views.LoginView.as_view(
                template_name="web/login.html",
                redirect_authenticated_user=True,
                next_page="web:home",
            )
        ),
        name="login",
    ),
    path(
        "logout/",
        views.console_page(auth_views.LogoutView.as_view(next_page="web:login")),
        name="logout",
    ),
    path("events/", live.events, name="events"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<int:rfa_id>/", views.request_detail, name="request-detail"),
    path("requests/<int:rfa_id>/actions/", views.request_transition, name="request-transition"),
    path("requests/<int:rfa_id>/routes/", views.request_route, name="request-route"),
    path("requests/<int:rfa_id>/offers/", views.request_offer, name="request-offer"),
    path(
        "offers/<int:offer_id>/accept/",
        views.offer_decide,
        {"action": "accept"},
        name="offer-accept",
    ),
    path(
        "offers/<int:offer_id>/decline/",
        views.offer_decide,
        {"action": "decline"},
        name="offer-decline",
    ),
    path("engagements/<int:engagement_id>/", views.engagement_detail, name="engagement-detail"),
    path("engagements/<int:engagement_id>/tasks/", views.engagement_task, name="engagement-task"),
    path(
        "engagements/<int:engagement_id>/tasks/<int:task_id>/",
        views.engagement_task_outcome,
        name="engagement-task-outcome",
    ),
    path("engagements/<int:engagement_id>/notes/", views.engagement_note, name="engagement-note"),
    path(
        "engagements/<int:engagement_id>/sitreps/",
        views.engagement_sitrep,
        name="engagement-sitrep",
    ),
    path(
        "engagements/<int:engagement_id>/review/",
        views.engagement_review,
        name="engagement-review",
    ),
    path("metrics/", metrics, name="metrics"),
    path("directory/", directory, name="directory"),
    path(
        "directory/organisations/<int:org_id>/capabilities/",
        capabilities_edit,
        name="directory-capabilities",
    ),
]

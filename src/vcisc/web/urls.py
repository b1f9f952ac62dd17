"""The console's pages, mounted at ``/`` (names in the ``web`` namespace)."""

from django.urls import path

from vcisc.web import accounts, feeds, live, oidc, signin, views
from vcisc.web.directory import capabilities_edit, directory
from vcisc.web.metrics import metrics

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.console_page(signin.SignInView.as_view()), name="login"),
    path("login/verify/", signin.verify, name="login-verify"),
    path("login/enrol/", signin.enrol, name="login-enrol"),
    # Sign-in with a nation's identity provider (OpenID Connect; vcisc.web.oidc).
    path("login/oidc/<slug:name>/", oidc.start, name="oidc-start"),
    path("login/oidc/<slug:name>/callback/", oidc.callback, name="oidc-callback"),
    path(
        "logout/",
        views.console_page(signin.SignOutView.as_view()),
        name="logout",
    ),
    path("events/", live.events, name="events"),
    path("feeds/", feeds.feeds, name="feeds"),
    path("feeds/<uuid:feed_id>/pull/", feeds.feed_pull, name="feed-pull"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<uuid:rfa_id>/", views.request_detail, name="request-detail"),
    path("requests/<uuid:rfa_id>/edit/", views.request_edit, name="request-edit"),
    path("requests/<uuid:rfa_id>/actions/", views.request_transition, name="request-transition"),
    path("requests/<uuid:rfa_id>/routes/", views.request_route, name="request-route"),
    path("requests/<uuid:rfa_id>/offers/", views.request_offer, name="request-offer"),
    *(
        path(
            f"offers/<uuid:offer_id>/{action}/",
            views.offer_act,
            {"action": action},
            name=f"offer-{action}",
        )
        for action in ("accept", "decline", "withdraw", "start", "complete")
    ),
    path("engagements/<uuid:engagement_id>/", views.engagement_detail, name="engagement-detail"),
    path("engagements/<uuid:engagement_id>/tasks/", views.engagement_task, name="engagement-task"),
    path(
        "engagements/<uuid:engagement_id>/tasks/<uuid:task_id>/",
        views.engagement_task_outcome,
        name="engagement-task-outcome",
    ),
    path(
        "engagements/<uuid:engagement_id>/members/",
        views.engagement_member,
        name="engagement-member",
    ),
    path("engagements/<uuid:engagement_id>/notes/", views.engagement_note, name="engagement-note"),
    path(
        "engagements/<uuid:engagement_id>/indicators/",
        views.engagement_indicator,
        name="engagement-indicator",
    ),
    path(
        "engagements/<uuid:engagement_id>/indicators/import/",
        views.engagement_indicator_import,
        name="engagement-indicator-import",
    ),
    path(
        "engagements/<uuid:engagement_id>/sitreps/",
        views.engagement_sitrep,
        name="engagement-sitrep",
    ),
    path(
        "engagements/<uuid:engagement_id>/review/",
        views.engagement_review,
        name="engagement-review",
    ),
    path("account/", accounts.account, name="account"),
    path("account/recovery-codes/", signin.recovery_codes, name="recovery-codes"),
    path(
        "account/sign-out-everywhere/",
        signin.sign_out_everywhere,
        name="sign-out-everywhere",
    ),
    path("tokens/<str:key_id>/revoke/", accounts.token_revoke, name="token-revoke"),
    path("users/", accounts.users, name="users"),
    path("users/new/", accounts.user_new, name="user-new"),
    path("users/<int:user_id>/", accounts.user_detail, name="user-detail"),
    path("users/<int:user_id>/deactivate/", accounts.user_deactivate, name="user-deactivate"),
    path("metrics/", metrics, name="metrics"),
    path("directory/", directory, name="directory"),
    path(
        "directory/organisations/<int:org_id>/capabilities/",
        capabilities_edit,
        name="directory-capabilities",
    ),
]

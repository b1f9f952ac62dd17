"""The console's pages, mounted at ``/`` (names in the ``web`` namespace)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from vcisc.web import views

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
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<int:rfa_id>/", views.request_detail, name="request-detail"),
]

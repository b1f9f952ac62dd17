"""A URL map with one route the leak suite cannot fill on its own (for test_discovery.py)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from vcisc.urls import urlpatterns as application


def widget(request: HttpRequest, widget_id: int) -> HttpResponse:
    return HttpResponse(f"widget {widget_id}")


urlpatterns = [*application, path("widgets/<int:widget_id>/", widget, name="widget")]

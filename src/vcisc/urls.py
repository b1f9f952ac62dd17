"""The URL map: health, the typed API, TAXII 2.1, the MISP feed, the operators' admin, the web
console."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from vcisc.api import api
from vcisc.feeds import served


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, without authentication."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok", "database": connection.vendor})
    except Exception:  # the message would tell an anonymous caller about our internals
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("taxii2/", include("vcisc.sharing.taxii.urls")),
    path("feeds/misp/manifest.json", served.manifest, name="misp-feed-manifest"),
    path("feeds/misp/hashes.csv", served.hashes, name="misp-feed-hashes"),
    path("feeds/misp/<str:event_uuid>.json", served.event, name="misp-feed-event"),
    path("admin/", admin.site.urls),
    path("", include("vcisc.web.urls")),
]

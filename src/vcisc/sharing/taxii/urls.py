"""The TAXII 2.1 URL map (DOMAIN.md §7), mounted at ``/taxii2/`` by ``vcisc.urls``.

Trailing slashes as the specification writes them; the status resource also answers without
one, because ``taxii2-client`` polls ``…/status/{id}`` (it joins ``../../status/{id}``).
"""

from django.urls import path

from vcisc.sharing.taxii import collections, discovery, objects, status

app_name = "taxii"

_C = "<str:root>/collections/<str:collection_id>/"

urlpatterns = [
    path("", discovery.discovery, name="discovery"),
    path("<str:root>/", discovery.api_root, name="api-root"),
    path("<str:root>/status/<str:status_id>/", status.status, name="status"),
    path("<str:root>/status/<str:status_id>", status.status, name="status-no-slash"),
    path("<str:root>/collections/", collections.collections, name="collections"),
    path(_C, collections.collection, name="collection"),
    path(_C + "objects/", objects.objects, name="objects"),
    path(_C + "manifest/", objects.manifest, name="manifest"),
    path(_C + "objects/<str:object_id>/", objects.one_object, name="object"),
    path(_C + "objects/<str:object_id>/versions/", objects.object_versions, name="versions"),
]

"""Server discovery (TAXII 2.1 §4.1) and API root information (§4.2).

One API root, ``/taxii2/vcisc/``; the discovery resource is the same for every authenticated
user (it names no collection).
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from vcisc.federation.models import User
from vcisc.sharing.taxii.endpoint import API_ROOT, endpoint
from vcisc.sharing.taxii.media import MEDIA_TYPE, json_response

__all__ = ["API_ROOT", "api_root", "discovery", "max_content_length"]


def max_content_length() -> int:
    """The largest POST body accepted (§4.2.1 ``max_content_length``): the server's body
    limit, or ``VCISC_TAXII_MAX_CONTENT_LENGTH`` when a deployment sets a smaller one."""
    limit = int(settings.VCISC_MAX_BODY_BYTES)
    return min(limit, int(getattr(settings, "VCISC_TAXII_MAX_CONTENT_LENGTH", limit)))


@endpoint("GET")
def discovery(request: HttpRequest, user: User) -> HttpResponse:
    root = request.build_absolute_uri(reverse("taxii:api-root", args=[API_ROOT]))
    body = {
        "title": "VCISC TAXII 2.1 server",
        "description": "Engagement indicators and federation feeds of the VCISC clearing house. "
        "You see the collections and objects your organisation may read.",
        "default": root,
        "api_roots": [root],
    }
    return json_response(orjson.dumps(body))


@endpoint("GET")
def api_root(request: HttpRequest, user: User, root: str) -> HttpResponse:
    body = {
        "title": "VCISC",
        "description": "One collection per engagement you take part in, and the federation's "
        "TLP:CLEAR and TLP:GREEN collections.",
        "versions": [MEDIA_TYPE],
        "max_content_length": max_content_length(),
    }
    return json_response(orjson.dumps(body))

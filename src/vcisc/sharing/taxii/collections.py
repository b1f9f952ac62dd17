"""Collections (TAXII 2.1 §5.1) and one collection (§5.2), as the user may see them.

Which collections exist for a user is :mod:`vcisc.sharing.taxii.scopes`' decision (through
:mod:`vcisc.authz`); one the user may not read answers exactly like a missing id.
"""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse

from vcisc.federation.models import User
from vcisc.sharing.taxii.endpoint import endpoint
from vcisc.sharing.taxii.media import json_response
from vcisc.sharing.taxii.scopes import get_collection, readable_collections

__all__ = ["collection", "collections"]


@endpoint("GET")
def collections(request: HttpRequest, user: User, root: str) -> HttpResponse:
    found = [c.info() for c in readable_collections(user)]
    return json_response(orjson.dumps({"collections": found} if found else {}))


@endpoint("GET")
def collection(request: HttpRequest, user: User, root: str, collection_id: str) -> HttpResponse:
    return json_response(orjson.dumps(get_collection(user, collection_id).info()))

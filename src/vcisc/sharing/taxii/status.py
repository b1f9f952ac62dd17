"""Status resources (TAXII 2.1 §4.3): the outcome of a POST, for the user who made it.

Anyone else — and any id that does not exist — gets the same 404.
"""

from __future__ import annotations

from uuid import UUID

import orjson
from django.http import HttpRequest, HttpResponse

from vcisc.federation.models import User
from vcisc.sharing.taxii.endpoint import endpoint
from vcisc.sharing.taxii.errors import TaxiiError
from vcisc.sharing.taxii.media import json_response, timestamp
from vcisc.sharing.taxii.models import StatusResource

__all__ = ["status", "status_body"]


def status_body(s: StatusResource) -> bytes:
    """The status resource (§4.3.1); adding is synchronous, so it is always ``complete``."""
    return orjson.dumps(
        {
            "id": str(s.id),
            "status": "complete",
            "request_timestamp": timestamp(s.request_timestamp),
            "total_count": s.total_count,
            "success_count": s.success_count,
            "successes": s.successes,
            "failure_count": s.failure_count,
            "failures": s.failures,
            "pending_count": 0,
            "pendings": [],
        }
    )


@endpoint("GET")
def status(request: HttpRequest, user: User, root: str, status_id: str) -> HttpResponse:
    missing = TaxiiError(404, "Status not found", f"no status {status_id} here")
    try:
        key = UUID(status_id)
    except ValueError:
        raise missing from None
    found = StatusResource.objects.filter(pk=key, user=user).first()
    if found is None:
        raise missing
    return json_response(status_body(found))

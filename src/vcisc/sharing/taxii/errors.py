"""The TAXII error message (TAXII 2.1 §3.6.1) and the one exception every view raises.

As in medallion, views raise :class:`TaxiiError`; :func:`error_response` turns it, and the
domain errors of :mod:`vcisc.errors`, into an error message with the right status code.
A collection or object the user may not see is a 404 with the same wording as a missing one.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse

from vcisc.errors import Conflict, Forbidden, Invalid, NotFound

__all__ = ["TaxiiError", "error_response", "from_domain"]

MEDIA_TYPE = "application/taxii+json;version=2.1"


class TaxiiError(Exception):
    """An error answered as a TAXII error message (§3.6.1)."""

    def __init__(
        self, status: int, title: str, description: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers or {}


def error_response(error: TaxiiError) -> HttpResponse:
    body: dict[str, Any] = {"title": error.title, "http_status": str(error.status)}
    if error.description:
        body["description"] = error.description
    response = HttpResponse(orjson.dumps(body), status=error.status, content_type=MEDIA_TYPE)
    for name, value in error.headers.items():
        response[name] = value
    return response


def from_domain(exc: Exception) -> TaxiiError:
    """A VCISC domain error as a TAXII error (the messages are the services' own)."""
    if isinstance(exc, NotFound):
        return TaxiiError(404, "Not found", str(exc))
    if isinstance(exc, Forbidden):
        return TaxiiError(403, "Forbidden", str(exc))
    if isinstance(exc, Conflict):
        return TaxiiError(403, "The collection is not open for writing", str(exc))
    if isinstance(exc, Invalid):
        return TaxiiError(422, "Invalid content", str(exc))
    raise exc

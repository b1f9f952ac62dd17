"""What every TAXII view shares (TAXII 2.1 §1.6, §3.6): methods, Accept, authentication,
and errors answered as TAXII error messages.

Unsafe methods (POST, DELETE) need a bearer token; a console session reads only. That is also
why the views are exempt from Django's CSRF check: no cookie ever authorises a write here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from vcisc.federation.models import User
from vcisc.sharing.taxii.auth import authenticated_user
from vcisc.sharing.taxii.errors import TaxiiError, error_response
from vcisc.sharing.taxii.media import check_accept

__all__ = ["API_ROOT", "endpoint"]

#: The one API root (§4.2), at /taxii2/vcisc/.
API_ROOT = "vcisc"

View = Callable[..., HttpResponse]


def endpoint(*methods: str) -> Callable[[Callable[..., HttpResponse]], View]:
    """Wrap a view taking ``(request, user, **kwargs)``."""

    def wrap(view: Callable[..., HttpResponse]) -> View:
        @csrf_exempt
        @wraps(view)
        def run(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise TaxiiError(
                        405,
                        "Method not allowed",
                        f"{request.method} is not allowed here",
                        {"Allow": ", ".join(methods)},
                    )
                user: User = authenticated_user(request, unsafe=request.method != "GET")
                if kwargs.get("root", API_ROOT) != API_ROOT:
                    raise TaxiiError(404, "API root not found", "this server has one API root")
                check_accept(request.headers.get("Accept"))
                return view(request, user, **kwargs)
            except TaxiiError as exc:
                return error_response(exc)

        return run

    return wrap

"""The typed REST API (django-ninja), mounted at ``/api/v1/``; OpenAPI at ``/api/v1/openapi.json``.

Domain errors map to HTTP here, in one handler (STYLE.md habit 3). Every route requires
authentication, the OpenAPI document included.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from vcisc.assistance.api import router as assistance_router
from vcisc.engagements.api import router as engagements_router
from vcisc.errors import DomainError
from vcisc.federation.api import router as federation_router
from vcisc.federation.services import TokenRejected, authenticate_token
from vcisc.feeds.api import router as feeds_router
from vcisc.http import AUTH, RateLimited

__all__ = ["api"]


def _docs_need_auth(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI document and docs page require a session or a bearer token too."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            try:
                authenticate_token(header[7:])
                return view(request, *args, **kwargs)
            except TokenRejected as exc:
                return JsonResponse({"detail": str(exc)}, status=401)
        return JsonResponse({"detail": "Unauthorized"}, status=401)

    return wrapper


api = NinjaAPI(
    title="VCISC API",
    version="1",
    description="Virtual Cyber Incident Support Capability: directory, requests for assistance, "
    "matching, offers and engagements.",
    auth=AUTH,
    docs_decorator=_docs_need_auth,
    urls_namespace="api-v1",
)
api.add_router("/", federation_router)
api.add_router("/", assistance_router)
api.add_router("/", engagements_router)
api.add_router("/", feeds_router)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, exc.body(), status=exc.status)


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = api.create_response(
        request, {"detail": f"rate limit exceeded ({exc}); retry later"}, status=429
    )
    response["Retry-After"] = "60"
    return response


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="vcisc"'
    return response

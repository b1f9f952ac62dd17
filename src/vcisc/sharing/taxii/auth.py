"""Who is asking (TAXII 2.1 §1.6.9: authentication is the server's choice).

A VCISC API token (``Authorization: Bearer vcisc_…``, the same tokens, checks and rate limit as
the API's), or — for reads only — the browser session of a signed-in console user. Without
credentials the answer is 401 with ``WWW-Authenticate: Bearer`` (§1.6.9).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import AuthenticationError

from vcisc.federation.models import User
from vcisc.http import BearerToken, RateLimited
from vcisc.sharing.taxii.errors import TaxiiError

__all__ = ["authenticated_user"]

_BEARER = BearerToken()
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vcisc-taxii"'}


def authenticated_user(request: HttpRequest, *, unsafe: bool = False) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not token.strip():
            raise TaxiiError(401, "Unauthorized", "use Authorization: Bearer <token>", _CHALLENGE)
        try:
            return _BEARER.authenticate(request, token.strip())
        except AuthenticationError as exc:
            raise TaxiiError(401, "Unauthorized", str(exc.message), _CHALLENGE) from None
        except RateLimited:
            raise TaxiiError(
                429, "Too many requests", "this token made more calls than its rate limit allows"
            ) from None
    user = getattr(request, "user", None)
    if not unsafe and user is not None and user.is_authenticated and user.is_active:
        return user
    raise TaxiiError(401, "Unauthorized", "an API token is needed (Bearer)", _CHALLENGE)

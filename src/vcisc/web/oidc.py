"""Sign-in with a nation's own identity provider: OpenID Connect Core 1.0, authorization-code
flow with PKCE (RFC 7636, ``S256``), through Authlib's Django client.

Providers are configured by ``VCISC_OIDC_PROVIDERS`` (:class:`vcisc.config.OidcProvider`); each
vouches for the people of the organisations it lists, with the roles it may grant. The flow:

1. ``/login/oidc/<name>/`` keeps state, nonce and the PKCE verifier in the session (Authlib)
   and sends the browser to the provider's authorization endpoint (a plain navigation, so the
   console's ``form-action 'self'`` policy is not involved).
2. ``/login/oidc/<name>/callback/`` checks the state, exchanges the code with the verifier at the
   token endpoint and validates the ID token (OIDC Core §3.1.3.7): signature against the
   provider's JWKS with an asymmetric algorithm, ``iss`` equal to the configured issuer, ``aud``
   holding our client id, ``azp``, ``nonce``, ``exp`` and ``iat``.
3. :func:`map_claims` turns the claims into a subject, an e-mail address, one of the provider's
   organisations and the roles it may grant; :func:`_account` finds, links or creates the
   account and brings it up to date through :mod:`vcisc.federation.services` (audited), under
   the linking rules below.
4. The person goes on as after a correct password (:func:`vcisc.web.signin.first_factor_passed`):
   signed in at once when the provider is trusted for the second factor and its ``amr`` claim
   shows one, otherwise on to VCISC's own TOTP step (enrolment at first sign-in).

Account linking: an account is found by the pair (issuer, ``sub``) of its
:class:`~vcisc.federation.models.ExternalIdentity`, never by e-mail address (OIDC Core §5.7:
only ``sub`` is stable and never reassigned within an issuer), so an address changed at the
provider neither breaks the account nor reaches another one. At a subject's first sign-in:
no account with its e-mail address: one is created and linked; an account with it: linked only
when the provider is configured with ``link_verified_email`` and the claims say
``email_verified``, and never when the account is already linked to another subject of the same
issuer (refused, audited); otherwise the sign-in is refused. A provider signs in an account only
when the account's organisation is one it vouches for, so it can never reach the secretariat,
an operator account or another nation's people unless configured to. It manages only the roles
it may grant: roles given in VCISC outside ``allowed_roles`` stay as they are.

The provider's discovery document and keys (JWKS) are kept in Django's cache for
``VCISC_OIDC_CACHE_SECONDS``; an ID token signed with a key id the kept JWKS lacks makes Authlib
fetch it once more (a provider rotating its keys), and the fresh keys are kept.

Signing out (:class:`vcisc.web.signin.SignOutView`) after a sign-in through a provider whose
discovery document has an ``end_session_endpoint`` continues at the provider (OpenID Connect
RP-Initiated Logout 1.0 §2), with the ID token as ``id_token_hint`` and the sign-in page as
``post_logout_redirect_uri``: :func:`end_session_url`.

Every failure answers a page that says what went wrong without echoing tokens (400 for a broken
or forged answer, 403 for a refusal, 502 when the provider cannot be reached or is
misconfigured), changes no account, and leaves an ``auth.oidc-failed`` audit record with the
reason; every success leaves ``auth.oidc-verified`` (provider, subject, ``amr``, roles ignored).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.django_client import OAuth, OAuthError
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_ratelimit import ALL
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError

from vcisc.audit.log import audit, snapshot
from vcisc.config import OidcProvider
from vcisc.errors import DomainError
from vcisc.federation import services as fs
from vcisc.federation.models import ExternalIdentity, Organisation, Role, User
from vcisc.web.signin import _safe_next, first_factor_passed, rate_limited, security_event
from vcisc.web.views import console_page

__all__ = [
    "Claimed",
    "SignInRefused",
    "callback",
    "end_session_url",
    "map_claims",
    "providers",
    "start",
]

#: How long a started sign-in waits for the provider's answer.
STATE_SECONDS = 600
#: Asymmetric JWS algorithms (RFC 7518 §3.1) an ID token may be signed with; never "none" or a
#: MAC keyed with the client secret, whatever the provider's discovery document offers.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_SCOPE = "openid email profile"
_LEEWAY_SECONDS = 60
#: ID token claims that only the ID token may carry (never filled in from the UserInfo answer).
_ID_TOKEN_ONLY = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "acr", "amr", "azp"}
)
#: Error codes of RFC 6749 §4.1.2.1 and §5.2 look like this; anything else is not shown.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_NAME_MAX = 150
#: OIDC Core §2: ``sub`` is at most 255 ASCII characters; longer is refused, never cut short
#: (two subjects that differ after the cut would be one account).
_SUBJECT_MAX = 255


def providers() -> tuple[OidcProvider, ...]:
    """The configured identity providers, read at every request (tests override the setting)."""
    return tuple(getattr(settings, "VCISC_OIDC_PROVIDERS", ()))


def _provider(name: str) -> OidcProvider:
    for provider in providers():
        if provider.name == name:
            return provider
    raise Http404("no such identity provider")


class SignInRefused(Exception):
    """Why a sign-in through a provider failed: ``reason`` is a short slug for the audit trail,
    ``message`` the sentence the person reads (never a token or a code)."""

    def __init__(
        self,
        reason: str,
        message: str,
        status: int = 403,
        *,
        user: User | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status
        self.user = user
        self.detail = dict(detail or {})


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """What a provider's validated claims say about a person, within what it may say."""

    subject: str
    email: str
    #: The provider sent ``email_verified`` and it is true (absent is not verified).
    email_verified: bool
    #: The entry of the provider's ``organisations`` the organisation claim named.
    organisation: str | int
    #: Roles the provider asked for and may grant, in :class:`Role` order; never empty.
    roles: tuple[str, ...]
    #: Roles it asked for but may not grant (left out, and written in the audit record).
    ignored_roles: tuple[str, ...] = ()
    first_name: str = ""
    last_name: str = ""
    #: The provider is trusted for the second factor and its ``amr`` claim shows one.
    second_factor_done: bool = False
    amr: tuple[str, ...] = field(default=())


def _short(value: object, limit: int = 200) -> str:
    return str(value)[:limit]


def _strings(value: object) -> list[str]:
    """A claim that holds a list of strings, or one string of space- or comma-separated words."""
    if isinstance(value, str):
        return [w for w in re.split(r"[\s,]+", value) if w]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def map_claims(provider: OidcProvider, claims: Mapping[str, Any]) -> Claimed:
    """Map validated ID token (and UserInfo) claims to a :class:`Claimed` person, or refuse.

    * ``sub`` must be a string of 1 to 255 characters;
    * ``email`` must be an address; when the provider sends ``email_verified``, it must be true;
    * the organisation claim must name one of the provider's ``organisations`` exactly;
    * the roles claim is filtered to the provider's ``allowed_roles``; none left is a refusal.
    """
    raw_subject = claims.get("sub")
    if not isinstance(raw_subject, str) or not 0 < len(raw_subject) <= _SUBJECT_MAX:
        raise SignInRefused(
            "subject",
            f"{provider.label} did not identify you in a way VCISC can use (its subject claim).",
            400,
            detail={"subject": _short(raw_subject, 100)},
        )
    subject = raw_subject
    raw_email = claims.get("email")
    email = raw_email.strip().lower() if isinstance(raw_email, str) else ""
    try:
        validate_email(email)
    except ValidationError:
        raise SignInRefused(
            "email-missing",
            f"{provider.label} did not send a usable e-mail address for you.",
            detail={"subject": subject},
        ) from None
    if "email_verified" in claims and claims["email_verified"] not in (True, "true"):
        raise SignInRefused(
            "email-unverified",
            f"{provider.label} has not verified your e-mail address. Verify it there, then "
            "sign in again.",
            detail={"subject": subject, "email": email},
        )
    raw_org = claims.get(provider.organisation_claim)
    matched = [
        entry
        for entry in provider.organisations
        if isinstance(raw_org, str | int)
        and not isinstance(raw_org, bool)
        and str(raw_org) == str(entry)
    ]
    if not matched:
        named = f" ({_short(raw_org, 100)})" if isinstance(raw_org, str | int) else ""
        raise SignInRefused(
            "organisation",
            f"{provider.label} may not sign in people of the organisation it named{named}.",
            detail={"subject": subject, "email": email, "organisation": _short(raw_org)},
        )
    requested = list(dict.fromkeys(_strings(claims.get(provider.roles_claim))))[:20]
    granted = tuple(r for r in Role.values if r in requested and r in provider.allowed_roles)
    ignored = tuple(r[:40] for r in requested if r not in granted)
    if not granted:
        raise SignInRefused(
            "no-role",
            f"{provider.label} gave you no role that it may grant in VCISC "
            f"({', '.join(provider.allowed_roles)}). Ask your organisation's administrator.",
            detail={"subject": subject, "email": email, "requested_roles": list(ignored)},
        )
    amr = tuple(_short(v, 40) for v in _strings(claims.get("amr")))[:20]
    strong = provider.second_factor == "idp" and bool(set(amr) & set(provider.mfa_amr))
    given, family = claims.get("given_name"), claims.get("family_name")
    return Claimed(
        subject=subject,
        email=email,
        email_verified=claims.get("email_verified") in (True, "true"),
        organisation=matched[0],
        roles=granted,
        ignored_roles=ignored,
        first_name=given[:_NAME_MAX] if isinstance(given, str) else "",
        last_name=family[:_NAME_MAX] if isinstance(family, str) else "",
        second_factor_done=strong,
        amr=amr,
    )


# --- accounts ---------------------------------------------------------------------------------


def _organisation(entry: str | int) -> Organisation | None:
    """An entry of a provider's ``organisations``: an id (number) or a name."""
    active = Organisation.objects.filter(active=True)
    if isinstance(entry, int) or entry.isdigit():
        return active.filter(pk=int(entry)).first()
    return active.filter(name=entry).first()


def _account(provider: OidcProvider, claimed: Claimed, now: datetime) -> tuple[User, str]:
    """The account the provider signs in, and how it was found: ``subject`` (its linked
    identity), ``email`` (linked now, under ``link_verified_email``) or ``created``; brought up
    to date (organisation, the roles the provider may grant). Refused under the linking rules
    (module docstring). Runs inside the caller's transaction: a refusal changes nothing."""
    organisation = _organisation(claimed.organisation)
    detail = {"subject": claimed.subject, "email": claimed.email}
    if organisation is None:
        # Configured but not (or no longer) in the directory: the operator has to look.
        raise SignInRefused(
            "organisation",
            f"The organisation {provider.label} named is not in the VCISC directory.",
            detail={**detail, "organisation": _short(claimed.organisation)},
        )
    identity = (
        ExternalIdentity.objects.select_related("user", "user__organisation")
        .filter(issuer=provider.issuer, subject=claimed.subject)
        .first()
    )
    if identity is not None:
        user, found = identity.user, "subject"
    else:
        existing = User.objects.select_related("organisation").filter(email=claimed.email).first()
        if existing is None:
            try:
                created = fs.create_user(
                    None,
                    email=claimed.email,
                    organisation_id=organisation.pk,
                    roles=list(claimed.roles),
                    first_name=claimed.first_name,
                    last_name=claimed.last_name,
                    now=now,
                )
            except DomainError as exc:
                raise SignInRefused("account", f"No account could be made: {exc.message}") from None
            _link(created, provider, claimed, now)
            return created, "created"
        _may_link(provider, claimed, existing, detail)
        user, found = existing, "email"
    _may_sign_in(provider, user, detail)
    if identity is None:
        _link(user, provider, claimed, now)
    else:
        ExternalIdentity.objects.filter(pk=identity.pk).update(last_login_at=now)
    kept = [r for r in (user.roles or []) if r not in provider.allowed_roles]
    roles = kept + [r for r in claimed.roles if r not in kept]
    changes: dict[str, Any] = {}
    if user.organisation_id != organisation.pk:
        changes["organisation_id"] = organisation.pk
    if roles != list(user.roles or []):
        changes["roles"] = roles
    if not changes:
        return user, found
    try:
        return fs.update(None, user, changes, now=now), found
    except DomainError as exc:
        raise SignInRefused(
            "account", f"Your account could not be updated: {exc.message}", user=user
        ) from None


def _may_link(provider: OidcProvider, claimed: Claimed, user: User, detail: dict[str, Any]) -> None:
    """A subject's first sign-in names the e-mail address of an existing account: refuse unless
    the provider may link it (``link_verified_email``, ``email_verified``) and the account has
    no other subject at this issuer."""
    other = ExternalIdentity.objects.filter(user=user, issuer=provider.issuer).first()
    if other is not None:
        # Another person at the provider, or the same one under a new subject: either way not
        # this account without an operator's word.
        raise SignInRefused(
            "identity-conflict",
            f"The VCISC account with your e-mail address is already linked to another "
            f"{provider.label} identity. Ask the operator.",
            user=user,
            detail={**detail, "linked_subject": other.subject},
        )
    if not provider.link_verified_email:
        raise SignInRefused(
            "account-exists",
            f"A VCISC account with your e-mail address already exists, and {provider.label} is "
            "not set up to sign it in. Sign in with that account's password, or ask the "
            "operator.",
            user=user,
            detail=detail,
        )
    if not claimed.email_verified:
        raise SignInRefused(
            "email-unverified",
            f"{provider.label} has not said that it verified your e-mail address, so it cannot "
            "sign in the existing account with that address.",
            user=user,
            detail=detail,
        )


def _may_sign_in(provider: OidcProvider, user: User, detail: dict[str, Any]) -> None:
    if not user.is_active:
        raise SignInRefused(
            "deactivated",
            "This account is deactivated. Ask your organisation's administrator.",
            user=user,
            detail=detail,
        )
    vouched = {o.pk for entry in provider.organisations if (o := _organisation(entry))}
    if user.organisation_id not in vouched:
        raise SignInRefused(
            "account-organisation",
            f"Your VCISC account belongs to an organisation that {provider.label} does not "
            "sign in for. Sign in with that account's password.",
            user=user,
            detail=detail,
        )


def _link(user: User, provider: OidcProvider, claimed: Claimed, now: datetime) -> ExternalIdentity:
    """Link the subject to the account (audited, actor ``system``, like the account itself)."""
    identity = ExternalIdentity.objects.create(
        user=user,
        issuer=provider.issuer,
        subject=claimed.subject,
        created_at=now,
        last_login_at=now,
    )
    audit(None, "create", identity, now=now, after=snapshot(identity))
    return identity


# --- audit ------------------------------------------------------------------------------------


def _refused(request: HttpRequest, provider: OidcProvider, refusal: SignInRefused) -> HttpResponse:
    """Audit the failure and answer the page that explains it."""
    security_event(
        "auth.oidc-failed",
        refusal.user,
        str(refusal.detail.get("email", "")),
        request,
        {"provider": provider.name, "reason": refusal.reason, **refusal.detail},
    )
    return render(
        request,
        "web/oidc_failed.html",
        {"provider": provider, "message": refusal.message, "page_tlp": None},
        status=refusal.status,
    )


def _rate_limited(request: HttpRequest) -> HttpResponse | None:
    """Starts and answers per client address, at the rate of password posts (own counter)."""
    return rate_limited(request, group="vcisc-oidc", method=ALL)


# --- the provider -----------------------------------------------------------------------------


def _unreachable(provider: OidcProvider, what: str) -> SignInRefused:
    return SignInRefused(
        "provider-unreachable",
        f"{provider.label} could not be reached or answered unexpectedly ({what}). "
        "Try again later, or sign in with your password.",
        502,
    )


def _check_metadata(provider: OidcProvider, metadata: dict[str, Any]) -> None:
    """What Authlib leaves to the application about the discovery document."""

    def broken(why: str) -> SignInRefused:
        return SignInRefused(
            "provider-metadata",
            f"{provider.label} is not set up as VCISC expects ({why}). Tell the operator.",
            502,
        )

    # OpenID Connect Discovery 1.0 §4.3: the issuer in the document is the one it was asked of.
    if metadata.get("issuer") != provider.issuer:
        raise broken("its discovery document names another issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise broken(f"its discovery document has no {key}")
    methods = metadata.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise broken("it does not support PKCE with S256")
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    usable = [alg for alg in offered if alg in SIGNING_ALGORITHMS]
    if not usable:
        raise broken("it signs ID tokens with no algorithm VCISC accepts")
    # Authlib verifies the ID token with the algorithms the document lists: only these.
    metadata["id_token_signing_alg_values_supported"] = usable


def _cache_key(provider: OidcProvider) -> str:
    return "vcisc-oidc-metadata:" + hashlib.sha256(provider.discovery_url.encode()).hexdigest()


def _remember(provider: OidcProvider, client: Any) -> None:
    """Keep the discovery document (and the JWKS, once fetched) for what is left of
    ``VCISC_OIDC_CACHE_SECONDS`` since the document was fetched."""
    ttl = int(settings.VCISC_OIDC_CACHE_SECONDS)
    metadata = dict(client.server_metadata)
    loaded_at = metadata.get("_loaded_at")
    if not ttl or not isinstance(loaded_at, int | float):
        return
    left = ttl - (time.time() - loaded_at)
    if left >= 1:
        cache.set(_cache_key(provider), metadata, timeout=int(left))


def _client(provider: OidcProvider) -> Any:
    """An Authlib client for one provider, its discovery document (and JWKS) from the cache or
    fetched, and checked either way.

    The client is made per request; what it fetched is kept (:func:`_remember`) for
    ``VCISC_OIDC_CACHE_SECONDS``, so a provider's new endpoints take effect after that long,
    and new keys at once (Authlib fetches the JWKS again when it meets an unknown key id).
    """
    oauth = OAuth()
    client = oauth.register(
        provider.name,
        client_id=provider.client_id,
        client_secret=provider.client_secret.get_secret_value(),
        server_metadata_url=provider.discovery_url,
        client_kwargs={
            "scope": _SCOPE,
            "code_challenge_method": "S256",
            "default_timeout": provider.timeout_seconds,
        },
    )
    client.framework.expires_in = STATE_SECONDS
    kept = cache.get(_cache_key(provider)) if settings.VCISC_OIDC_CACHE_SECONDS else None
    if isinstance(kept, dict) and "_loaded_at" in kept:
        client.server_metadata.update(kept)  # load_server_metadata() then fetches nothing
    try:
        metadata = client.load_server_metadata()
    except (OSError, ValueError):  # requests' errors are OSErrors; bad JSON a ValueError
        raise _unreachable(provider, "discovery") from None
    _check_metadata(provider, metadata)
    if kept is None:
        _remember(provider, client)
    return client


def _claims_options(provider: OidcProvider) -> dict[str, Any]:
    # OIDC Core §3.1.3.7 items 2-3: iss is exactly the issuer, aud holds our client id.
    # (Authlib checks iss against the discovery document only, and aud not at all.)
    return {
        "iss": {"essential": True, "value": provider.issuer},
        "aud": {"essential": True, "value": provider.client_id},
        "sub": {"essential": True},
    }


def _id_token_refusal(provider: OidcProvider, exc: JoseError) -> SignInRefused:
    label = provider.label
    if isinstance(exc, ExpiredTokenError):
        return SignInRefused("expired", f"The ID token from {label} has expired. Start again.", 400)
    if isinstance(exc, ClaimError):
        claim = exc.claim
        reason, why = {
            "iss": ("issuer", f"it was not issued by {label}"),
            "aud": ("audience", "it was not issued to VCISC"),
            "azp": ("audience", "it was not issued to VCISC"),
            "nonce": ("nonce", "it does not belong to this sign-in"),
        }.get(claim, ("id-token", f"its {_short(claim, 20)} claim is wrong or missing"))
        return SignInRefused(reason, f"The ID token was refused: {why}. Start again.", 400)
    return SignInRefused(
        "signature", f"The ID token's signature from {label} could not be verified.", 400
    )


def _fill_from_userinfo(
    client: Any, provider: OidcProvider, token: dict[str, Any], claims: dict[str, Any]
) -> dict[str, Any]:
    """Claims the ID token lacks, from the UserInfo endpoint (OIDC Core §5.3), whose ``sub``
    must be the ID token's (§5.3.2); the ID token's own claims always win."""
    needed = ("email", provider.organisation_claim, provider.roles_claim)
    if all(name in claims for name in needed) or not client.server_metadata.get(
        "userinfo_endpoint"
    ):
        return claims
    try:
        info = client.userinfo(token=token)
    except (OSError, ValueError, OAuthError):
        raise _unreachable(provider, "userinfo") from None
    if info.get("sub") != claims.get("sub"):
        raise SignInRefused(
            "userinfo", f"{provider.label}'s user information is about someone else.", 400
        )
    merged = dict(claims)
    for name, value in info.items():
        if name not in _ID_TOKEN_ONLY:
            merged.setdefault(name, value)
    return merged


# --- the two routes ---------------------------------------------------------------------------


@console_page
@require_GET
def start(request: HttpRequest, name: str) -> HttpResponse:
    """Send the browser to the provider, with state, nonce and a PKCE challenge."""
    provider = _provider(name)
    limited = _rate_limited(request)
    if limited:
        return limited
    target = _safe_next(request, request.GET.get("next", ""))
    if request.user.is_authenticated:
        return HttpResponseRedirect(target)
    try:
        client = _client(provider)
        redirect_uri = request.build_absolute_uri(reverse("web:oidc-callback", args=[name]))
        try:
            found = client.create_authorization_url(redirect_uri)
        except (OSError, ValueError, RuntimeError):
            raise _unreachable(provider, "authorization") from None
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)
    url = found.pop("url")
    # What authorize_redirect() keeps, plus where to go afterwards.
    client.save_authorize_data(request, redirect_uri=redirect_uri, next=target, **found)
    return HttpResponseRedirect(url)


@console_page
@require_GET
def callback(request: HttpRequest, name: str) -> HttpResponse:
    """The provider's answer: validate it, map the claims, sign in or refuse."""
    provider = _provider(name)
    limited = _rate_limited(request)
    if limited:
        return limited
    try:
        return _finish(request, provider)
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)


def _finish(request: HttpRequest, provider: OidcProvider) -> HttpResponse:
    if "error" in request.GET:
        code = request.GET["error"]
        shown = code if _ERROR_CODE.fullmatch(code) else "error"
        raise SignInRefused(
            "provider-error",
            f"{provider.label} did not sign you in ({shown}).",
            detail={"error": shown},
        )
    # RFC 9207 §2.4: when the answer names its issuer, it is the provider this flow went to.
    if request.GET.get("iss", provider.issuer) != provider.issuer:
        raise SignInRefused("issuer", f"The answer did not come from {provider.label}.", 400)
    client = _client(provider)
    pending = client.framework.get_state_data(request.session, request.GET.get("state")) or {}
    jwks = client.server_metadata.get("jwks")
    try:
        token = client.authorize_access_token(
            request, claims_options=_claims_options(provider), leeway=_LEEWAY_SECONDS
        )
    except MismatchingStateError:
        raise SignInRefused(
            "state",
            "This answer does not belong to a sign-in started in this browser, or it was "
            "already used or has expired. Start the sign-in again.",
            400,
        ) from None
    except OAuthError as exc:
        error = str(exc.error or "")
        shown = error if _ERROR_CODE.fullmatch(error) else "error"
        raise SignInRefused(
            "token-refused",
            f"{provider.label} refused to complete the sign-in ({shown}). Start again.",
            400,
            detail={"error": shown},
        ) from None
    except JoseError as exc:
        raise _id_token_refusal(provider, exc) from None
    except (OSError, ValueError):
        raise _unreachable(provider, "token") from None
    finally:
        if client.server_metadata.get("jwks") != jwks:
            _remember(provider, client)  # fetched (again, for an unknown key id): keep it
    if not token.get("userinfo"):
        raise SignInRefused("no-id-token", f"{provider.label} sent no ID token.", 400)
    claims = _fill_from_userinfo(client, provider, token, dict(token["userinfo"]))
    claimed = map_claims(provider, claims)
    now = timezone.now()
    try:
        with transaction.atomic():
            user, found = _account(provider, claimed, now)
            verified: dict[str, Any] = {
                "provider": provider.name,
                "issuer": provider.issuer,
                "subject": claimed.subject,
                "account": found,
                "amr": list(claimed.amr),
                "second_factor": "idp" if claimed.second_factor_done else "vcisc",
                "ignored_roles": list(claimed.ignored_roles),
            }
            if claimed.email != user.email:
                verified["email_at_provider"] = claimed.email
            security_event("auth.oidc-verified", user, user.email, request, verified)
    except IntegrityError:
        # Another sign-in of the same person made the account or the link meanwhile.
        raise SignInRefused(
            "conflict",
            "Another sign-in changed your account at the same moment. Start again.",
            409,
            detail={"subject": claimed.subject, "email": claimed.email},
        ) from None
    target = _safe_next(request, str(pending.get("next", "")))
    at_provider = {"provider": provider.name, "id_token": str(token.get("id_token", ""))}
    return first_factor_passed(
        request,
        user,
        target,
        second_factor_done=claimed.second_factor_done,
        provider_session=at_provider,
    )


# --- signing out at the provider --------------------------------------------------------------


def end_session_url(request: HttpRequest, signed_in_with: Mapping[str, Any]) -> str | None:
    """Where to send the browser after signing out here, when the person signed in through a
    provider whose discovery document has an ``end_session_endpoint`` (RP-Initiated Logout 1.0
    §2: ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri``); else None, and the
    console's own sign-in page follows as after any sign-out. Never fails the sign-out: a
    provider that cannot be reached is simply not asked."""
    name = signed_in_with.get("provider")
    provider = next((p for p in providers() if p.name == name), None)
    if provider is None:
        return None
    try:
        client = _client(provider)
    except SignInRefused:
        return None
    endpoint = client.server_metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    params = [
        ("client_id", provider.client_id),
        ("post_logout_redirect_uri", request.build_absolute_uri(reverse("web:login"))),
    ]
    id_token = signed_in_with.get("id_token")
    if isinstance(id_token, str) and id_token:
        params.insert(0, ("id_token_hint", id_token))
    return str(add_params_to_uri(endpoint, params))

"""Sign-in for people: password, then a TOTP second factor (django-otp), with enrolment by QR
code, single-use recovery codes, account lockout (django-axes), per-IP rate limits
(django-ratelimit), and "sign out everywhere".

The flow never half-signs-in anyone. After a correct password the session holds only a
*pending* sign-in (the account id, when, where to go next) for :data:`PENDING_SECONDS`;
``request.user`` stays anonymous, so every page and API route still refuses the session. Only a
correct code (or, at first sign-in, a confirmed enrolment) calls :func:`django.contrib.auth.login`,
which also gives the session a new key.

Every security-relevant event is an audit record: sign-in, wrong password, lockout, wrong
second-factor code, enrolment, recovery code used, new recovery codes, sign-out everywhere.

Signing out (:class:`SignOutView`) ends the session here and, after a sign-in through an
identity provider that offers it, goes on to sign out there
(:func:`vcisc.web.oidc.end_session_url`).
"""

from __future__ import annotations

import base64
import time
from io import BytesIO
from typing import Any

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.auth.views import LoginView, LogoutView
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_ratelimit import ALL
from django_ratelimit.core import is_ratelimited

from vcisc.audit.chain import record
from vcisc.audit.log import audit
from vcisc.federation.models import User
from vcisc.web.middleware import AUTH_AT, SEEN_AT
from vcisc.web.views import console_page, request_user

__all__ = [
    "PENDING_SECONDS",
    "PROVIDER_SESSION",
    "RECOVERY_CODES",
    "SignInView",
    "SignOutView",
    "account_name",
    "client_ip",
    "enrol",
    "first_factor_passed",
    "locked_out",
    "rate_limited",
    "recovery_codes",
    "security_event",
    "sign_out_everywhere",
    "verify",
]

#: How long a correct password waits for its second factor.
PENDING_SECONDS = 300
#: Recovery codes issued at enrolment and on request; each works once.
RECOVERY_CODES = 10
_PENDING = "vcisc_pending_signin"
#: Session key: the identity provider a person signed in through and its ID token, for signing
#: out there too (vcisc.web.oidc); absent after a password sign-in.
PROVIDER_SESSION = "vcisc_signed_in_with"
_TOTP_NAME = "Authenticator app"
_RECOVERY_NAME = "Recovery codes"


def client_ip(request: HttpRequest) -> str:
    """The peer address (`vcisc serve` listens on loopback or behind a proxy that sets it)."""
    return str(request.META.get("REMOTE_ADDR", ""))


def account_name(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account a sign-in attempt names, as lockout counts it (e-mail, lower case)."""
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return str(raw).strip().lower()[:254]


# --- audit of sign-in events ----------------------------------------------------------------


def security_event(
    action: str,
    user: User | None,
    username: str,
    request: Any,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit record for a sign-in event that changes no domain object: who (the
    account, else the name tried), what, ``detail``, and the client address."""
    ip = client_ip(request) if request is not None else ""
    with transaction.atomic():
        record(
            at=timezone.now(),
            actor_id=user.pk if user else None,
            actor=user.email if user else (username[:254] or "anonymous"),
            organisation=user.organisation.name if user and user.organisation else "",
            action=action,
            object_type="federation.user",
            object_id=str(user.pk) if user else "",
            after={**(detail or {}), "ip": ip} if ip else detail,
        )


@receiver(user_login_failed)
def _password_refused(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    username = str(credentials.get("username", ""))
    user = User.objects.filter(email=username.strip().lower()).first()
    security_event("auth.password-failed", user, username, request)


@receiver(user_logged_in)
def _signed_in(sender: Any, request: Any, user: User, **_: Any) -> None:
    security_event("auth.signed-in", user, user.email, request)


def locked_out(
    request: HttpRequest,
    original_response: HttpResponseBase | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' answer once an account is locked: 429, the same for every account name."""
    username = account_name(request, credentials)
    user = User.objects.filter(email=username).first()
    security_event("auth.locked-out", user, username, request)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response = render(
        request,
        "web/locked_out.html",
        {"minutes": minutes, "page_tlp": None},
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


def rate_limited(
    request: HttpRequest, *, group: str = "vcisc-signin", method: Any = ("POST",)
) -> HttpResponse | None:
    """Sign-in requests per client address (one counter per ``group``, at
    ``VCISC_SIGNIN_RATE_PER_IP``): the 429 page when over the limit, else None."""
    if is_ratelimited(
        request,
        group=group,
        key=lambda _g, r: client_ip(r),
        rate=settings.VCISC_SIGNIN_RATE_PER_IP,
        method=list(method) if method is not ALL else ALL,
        increment=True,
    ):
        response = render(
            request, "web/locked_out.html", {"rate_limited": True, "page_tlp": None}, status=429
        )
        response["Retry-After"] = "60"
        return response
    return None


# --- step 1: the password -------------------------------------------------------------------


def _safe_next(request: HttpRequest, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return "/"


def _totp(user: User, *, confirmed: bool | None = True) -> TOTPDevice | None:
    qs = TOTPDevice.objects.filter(user=user)
    if confirmed is not None:
        qs = qs.filter(confirmed=confirmed)
    return qs.order_by("-pk").first()


class SignInView(LoginView):
    """The password step; a correct password leads to the code (or enrolment) step."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return rate_limited(request) or super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.get_user()
        target = _safe_next(self.request, self.get_redirect_url() or "")
        return first_factor_passed(self.request, user, target)


def first_factor_passed(
    request: HttpRequest,
    user: User,
    target: str,
    *,
    second_factor_done: bool = False,
    provider_session: dict[str, str] | None = None,
) -> HttpResponse:
    """After a correct password, or an identity provider's word (:mod:`vcisc.web.oidc`): sign
    in, or keep a pending sign-in and go on to the code (or enrolment) step.

    ``second_factor_done``: the identity provider already checked a second factor and VCISC is
    configured to trust it; ``target`` must already be a safe local address;
    ``provider_session``: which provider signed the person in (kept in the session once signed
    in, as :data:`PROVIDER_SESSION`).
    """
    enrolled = _totp(user) is not None
    if second_factor_done or (not enrolled and not settings.VCISC_REQUIRE_SECOND_FACTOR):
        _complete(request, user, None, provider_session)
        return HttpResponseRedirect(target)
    request.session.cycle_key()
    request.session[_PENDING] = {
        "user": user.pk,
        "at": time.time(),
        "next": target,
        "backend": getattr(user, "backend", ""),
        "provider": provider_session,
    }
    return redirect("web:login-verify" if enrolled else "web:login-enrol")


def _complete(
    request: HttpRequest, user: User, device: Any, provider: dict[str, str] | None = None
) -> None:
    """The one place a person becomes signed in."""
    backend = "django.contrib.auth.backends.ModelBackend"
    login(request, user, backend=backend)
    if device is not None:
        otp_login(request, device)
    now = time.time()
    request.session[AUTH_AT] = now
    request.session[SEEN_AT] = now
    request.session.pop(_PENDING, None)
    if provider:
        request.session[PROVIDER_SESSION] = provider
    else:
        request.session.pop(PROVIDER_SESSION, None)


def _pending(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    data = request.session.get(_PENDING)
    if not isinstance(data, dict) or time.time() - float(data.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(_PENDING, None)
        return None
    user_id = data.get("user")
    if not isinstance(user_id, int):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    return user, data


def _start_over(request: HttpRequest) -> HttpResponse:
    messages.error(request, "Your sign-in timed out or was not started. Please sign in again.")
    return redirect("web:login")


class SignOutView(LogoutView):
    """Sign out (POST); after a sign-in through an identity provider with an end-session
    endpoint, on to that provider to end the session there too, which then sends the browser
    back to the sign-in page."""

    next_page = "web:login"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from vcisc.web.oidc import end_session_url  # vcisc.web.oidc imports this module

        signed_in_with = (
            request.session.get(PROVIDER_SESSION) if request.user.is_authenticated else None
        )
        response = super().post(request, *args, **kwargs)  # the session ends here first
        if isinstance(signed_in_with, dict):
            at_provider = end_session_url(request, signed_in_with)
            if at_provider:
                return HttpResponseRedirect(at_provider)
        return response


# --- step 2: the code -----------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app, or a recovery code",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        return "".join(str(self.cleaned_data["code"]).split()).lower()


def _check_code(user: User, code: str) -> tuple[Any, bool]:
    """(device, used a recovery code) when the code is right; (None, False) otherwise.

    Both devices throttle: each failure doubles the wait before the next try is even checked.
    """
    totp = _totp(user)
    if code.isdigit() and totp is not None and totp.verify_token(code):
        return totp, False
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(code):
            return device, True
    return None, False


@console_page
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponseBase:
    found = _pending(request)
    if found is None:
        return _start_over(request)
    user, data = found
    if request.method == "POST":
        limited = rate_limited(request)
        if limited:
            return limited
        form = CodeForm(request.POST)
        if form.is_valid():
            device, recovery = _check_code(user, form.cleaned_data["code"])
            if device is not None:
                _complete(request, user, device, data.get("provider"))
                if recovery:
                    security_event("auth.recovery-code-used", user, user.email, request)
                    left = StaticToken.objects.filter(device=device).count()
                    messages.warning(
                        request,
                        f"You signed in with a recovery code; {left} are left. "
                        "Make new ones on your account page if you are running low.",
                    )
                return HttpResponseRedirect(data["next"])
            security_event("auth.second-factor-failed", user, user.email, request)
            form.add_error("code", "That code is not right, or it was already used. Try again.")
        status = 422
    else:
        form, status = CodeForm(), 200
    return render(request, "web/login_verify.html", {"form": form, "page_tlp": None}, status=status)


# --- enrolment --------------------------------------------------------------------------------


def _qr_svg(text: str) -> SafeString:
    """An inline SVG QR code (no image request, nothing for the policy to allow)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]  # drop the XML declaration
    svg = svg.replace("<svg ", '<svg role="img" aria-labelledby="qr-title" ', 1)
    svg = svg.replace(">", '><title id="qr-title">QR code to add VCISC to your app</title>', 1)
    return mark_safe(svg)  # noqa: S308 - generated by qrcode from our own otpauth URL


def _issue_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; return them (shown once)."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=_RECOVERY_NAME, defaults={"confirmed": True}
    )
    StaticToken.objects.filter(device=device).delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


@console_page
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponseBase:
    """First sign-in without an authenticator: scan the QR code, type a code to confirm."""
    found = _pending(request)
    if found is None:
        return _start_over(request)
    user, data = found
    if _totp(user) is not None:
        return redirect("web:login-verify")  # enrolled meanwhile: never show a key again
    device = _totp(user, confirmed=False)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=_TOTP_NAME, confirmed=False)
    status = 200
    form = CodeForm()
    if request.method == "POST":
        limited = rate_limited(request)
        if limited:
            return limited
        form = CodeForm(request.POST)
        status = 422
        if form.is_valid():
            code = form.cleaned_data["code"]
            if code.isdigit() and device.verify_token(code):
                with transaction.atomic():
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    codes = _issue_recovery_codes(user)
                    audit(user, "auth.enrolled", user, now=timezone.now())
                _complete(request, user, device, data.get("provider"))
                return render(
                    request,
                    "web/recovery_codes.html",
                    {"codes": codes, "next": data["next"], "page_tlp": None, "first": True},
                )
            security_event("auth.second-factor-failed", user, user.email, request)
            form.add_error("code", "That code is not right. Check the app's clock and try again.")
    secret = base64.b32encode(device.bin_key).decode()
    return render(
        request,
        "web/login_enrol.html",
        {
            "form": form,
            "qr": _qr_svg(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "page_tlp": None,
        },
        status=status,
    )


# --- from the account page --------------------------------------------------------------------


@console_page
@login_required
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes; the old ones stop working."""
    user = request_user(request)
    with transaction.atomic():
        codes = _issue_recovery_codes(user)
        audit(user, "auth.recovery-codes", user, now=timezone.now())
    return render(
        request,
        "web/recovery_codes.html",
        {"codes": codes, "next": "/account/", "page_tlp": None, "first": False},
    )


@console_page
@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session of this person, this one included (API tokens are revoked apart)."""
    user = request_user(request)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.session_epoch += 1
        locked.save(update_fields=["session_epoch"])
        audit(user, "auth.sign-out-everywhere", locked, now=timezone.now())
    logout(request)
    messages.success(request, "You are signed out on every device.")
    return redirect("web:login")


def second_factor_of(user: User) -> dict[str, Any]:
    """What the account page says about the person's second factor."""
    totp = _totp(user)
    left = StaticToken.objects.filter(
        device__user=user, device__name=_RECOVERY_NAME, device__confirmed=True
    ).count()
    return {
        "enrolled": totp is not None,
        "created": getattr(totp, "created_at", None),
        "left": left,
    }

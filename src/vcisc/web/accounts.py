"""People and API tokens in the console: everyone manages their own tokens on their account
page; administrators create people, change their roles, deactivate them, and issue or revoke
their tokens.

Every write goes through :mod:`vcisc.federation.services`, which checks rights and audits, as
the ``/api/v1/users`` and ``/api/v1/tokens`` routes do. A new token's text is rendered once, in
the response to the post that created it, and never stored (not in a message, not in the
session): the page says to copy it now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from vcisc.errors import DomainError, Forbidden, Invalid, NotFound
from vcisc.federation import services
from vcisc.federation.models import ApiToken, Organisation, Role, User
from vcisc.http import MAX_DB_INT
from vcisc.web.forms import ServiceForm
from vcisc.web.signin import second_factor_of
from vcisc.web.views import console_page, request_user

__all__ = [
    "TokenForm",
    "UserEditForm",
    "UserForm",
    "account",
    "token_revoke",
    "user_deactivate",
    "user_detail",
    "user_new",
    "users",
]

PER_PAGE = 50
T = TypeVar("T")


def _require_admin(user: User) -> None:
    if not user.has_role(Role.ADMIN):
        raise PermissionDenied("managing people needs the admin role")


# --- forms --------------------------------------------------------------------------------------


class TokenForm(ServiceForm):
    AUTO_ID = "token_%s"

    name = forms.CharField(
        max_length=100, required=False, help_text="What the token is for, e.g. the MISP sync."
    )
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=3650, initial=90)


def _organisation_field() -> forms.ModelChoiceField[Organisation]:
    return forms.ModelChoiceField(
        queryset=Organisation.objects.filter(active=True).select_related("nation").order_by("name"),
        required=False,
        empty_label="No organisation (operator)",
    )


def _roles_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The coordinator role belongs to secretariat users.",
    )


class UserEditForm(ServiceForm):
    AUTO_ID = "user_%s"

    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    organisation = _organisation_field()
    roles = _roles_field()

    FIELD_ALIASES = {"organisation_id": "organisation"}

    def changes(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        org = data.pop("organisation")
        data["organisation_id"] = org.pk if org is not None else None
        return data


class UserForm(UserEditForm):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        max_length=200,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty for an account that uses API tokens only.",
    )

    field_order = ["email", "first_name", "last_name", "organisation", "roles", "password"]


# --- pages --------------------------------------------------------------------------------------


def _tokens_of(owner: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=owner).order_by("-created_at", "-pk"))


def _attempt(form: ServiceForm, write: Callable[[], T]) -> tuple[T | None, int]:
    """Run a service write for a form: (its result, 200), or (None, the error's status) with the
    error next to the field it names (else above the form). A refusal is the 403 page."""
    try:
        return write(), 200
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    except Invalid as exc:
        form.add_domain_error(exc)
        return None, exc.status
    except DomainError as exc:
        form.add_error(None, exc.message)
        return None, exc.status


def _issue(actor: User, owner: User, form: TokenForm) -> tuple[str | None, int]:
    """Issue a token from a valid form: (the token text, 201), or (None, the error's status)."""
    issued, status = _attempt(
        form,
        lambda: services.create_token(
            actor, owner, days=form.cleaned_data["days"], name=form.cleaned_data["name"]
        ),
    )
    return (issued[1], 201) if issued else (None, status)


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in person's account: who they are, and their own API tokens."""
    user = request_user(request)
    form = TokenForm(request.POST or None)
    new_token: str | None = None
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            new_token, status = _issue(user, user, form)
            if new_token is not None:
                form = TokenForm()
    return render(
        request,
        "web/account.html",
        {
            "nav": "account",
            "page_tlp": None,
            "person": user,
            "tokens": _tokens_of(user),
            "token_form": form,
            "new_token": new_token,
            "second_factor": second_factor_of(user),
            "token_action": "web:account",
            "now": timezone.now(),
            "token_target": None,
        },
        status=status,
    )


def _token_of(actor: User, key_id: str) -> ApiToken:
    """A token the actor may revoke: their own, or anyone's for an admin; else 404."""
    qs = ApiToken.objects.filter(key_id=key_id[:64])
    if not actor.has_role(Role.ADMIN):
        qs = qs.filter(user=actor)
    row = qs.select_related("user").first()
    if row is None:
        raise Http404("token not found")
    return row


@console_page
@login_required
@require_POST
def token_revoke(request: HttpRequest, key_id: str) -> HttpResponse:
    actor = request_user(request)
    row = _token_of(actor, key_id)
    try:
        services.revoke_token(actor, row)
    except NotFound:
        raise Http404("token not found") from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Token {row.key_id} revoked.")
    if row.user_id == actor.pk:
        return redirect("web:account")
    return redirect("web:user-detail", user_id=row.user_id)


def _people(query: str) -> QuerySet[User]:
    qs = User.objects.select_related("organisation").order_by("email")
    if query:
        qs = qs.filter(
            Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(organisation__name__icontains=query)
        )
    return qs


@console_page
@login_required
@require_safe
def users(request: HttpRequest) -> HttpResponse:
    """Everyone with an account, searchable; administrators only."""
    admin = request_user(request)
    _require_admin(admin)
    query = request.GET.get("q", "").replace("\x00", "").strip()[:100]  # PostgreSQL refuses NUL
    page = Paginator(_people(query), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/users.html",
        {"nav": "users", "page_tlp": None, "page": page, "query": query},
    )


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    admin = request_user(request)
    _require_admin(admin)
    form = UserForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.changes()
            created, status = _attempt(
                form,
                lambda: services.create_user(
                    admin,
                    email=data["email"],
                    organisation_id=data["organisation_id"],
                    roles=data["roles"],
                    password=data["password"] or None,
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                ),
            )
            if created is not None:
                messages.success(request, f"Account {created.email} created.")
                return redirect("web:user-detail", user_id=created.pk)
    return render(
        request,
        "web/user_form.html",
        {"nav": "users", "page_tlp": None, "form": form},
        status=status,
    )


def _person(user_id: int) -> User:
    if user_id > MAX_DB_INT:
        raise Http404("user not found")
    found = User.objects.select_related("organisation").filter(pk=user_id).first()
    if found is None:
        raise Http404("user not found")
    return found


@console_page
@login_required
@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    """One person: edit names, organisation and roles; their tokens; issue one for them."""
    admin = request_user(request)
    _require_admin(admin)
    person = _person(user_id)
    initial = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "organisation": person.organisation_id,
        "roles": person.roles,
    }
    form = UserEditForm(initial=initial)
    token_form = TokenForm()
    new_token: str | None = None
    status = 200
    if request.method == "POST":
        status = 422
        if request.POST.get("form") == "token":
            token_form = TokenForm(request.POST)
            if token_form.is_valid():
                new_token, status = _issue(admin, person, token_form)
                if new_token is not None:
                    token_form = TokenForm()
        else:
            form = UserEditForm(request.POST)
            if form.is_valid():
                changes = form.changes()
                saved, status = _attempt(form, lambda: services.update(admin, person, changes))
                if saved is not None:
                    messages.success(request, f"{saved.email} saved.")
                    return redirect("web:user-detail", user_id=saved.pk)
    return render(
        request,
        "web/user_detail.html",
        {
            "nav": "users",
            "page_tlp": None,
            "person": person,
            "form": form,
            "tokens": _tokens_of(person),
            "token_form": token_form,
            "new_token": new_token,
            "token_action": "web:user-detail",
            "now": timezone.now(),
            "token_target": person.pk,
        },
        status=status,
    )


@console_page
@login_required
@require_POST
def user_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    """Deactivate an account; its tokens are revoked with it (the service does both)."""
    admin = request_user(request)
    _require_admin(admin)
    person = _person(user_id)
    if person.pk == admin.pk:
        messages.error(request, "You cannot deactivate your own account.")
        return redirect("web:user-detail", user_id=person.pk)
    try:
        services.deactivate(admin, person)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{person.email} deactivated; their tokens are revoked.")
    return redirect("web:user-detail", user_id=person.pk)

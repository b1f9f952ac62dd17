"""The write path of the federation directory (STYLE.md habit 1).

Every function here checks the actor's rights, validates, changes the row and appends the audit
record in one transaction. ``actor=None`` means the operator at the server console (``vcisc`` CLI
run with database access), who is trusted like the database itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from vcisc.audit.log import audit, snapshot
from vcisc.dbutil import clean_or_invalid, reject_nulls
from vcisc.errors import Conflict, Forbidden, Invalid, NotFound
from vcisc.federation import tokens
from vcisc.federation.models import (
    ApiToken,
    Capability,
    Nation,
    Organisation,
    OrgKind,
    PointOfContact,
    Role,
    User,
)
from vcisc.oncall import OnCallError, parse_on_call, parse_timezone
from vcisc.vocabulary import ICS_PROTOCOLS, LEGAL_CONDITIONS, sector_choices

__all__ = [
    "authenticate_token",
    "check_token",
    "create_capability",
    "create_contact",
    "create_nation",
    "create_organisation",
    "create_token",
    "create_user",
    "deactivate",
    "revoke_token",
    "update",
]

M = TypeVar("M", bound=models.Model)

_LANG_MAX = 20


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- rights -------------------------------------------------------------------------------------


def _is_operator(actor: User | None) -> bool:
    """The console, an admin, or a secretariat coordinator manage the directory itself."""
    if actor is None:
        return True
    if actor.has_role(Role.ADMIN):
        return True
    org = actor.organisation
    return bool(org and org.is_secretariat and actor.has_role(Role.COORDINATOR))


def _require_operator(actor: User | None) -> None:
    if not _is_operator(actor):
        raise Forbidden("managing the directory needs the admin or coordinator role")


def _require_org_manager(actor: User | None, org_id: int) -> None:
    """Own organisation's liaison officers manage its contacts and capabilities."""
    if _is_operator(actor):
        return
    assert actor is not None
    if actor.organisation_id == org_id and actor.has_role(Role.LIAISON):
        return
    raise Forbidden("only your organisation's liaison officers or an admin may change this")


def _require_user_admin(actor: User | None) -> None:
    if actor is not None and not actor.has_role(Role.ADMIN):
        raise Forbidden("managing users needs the admin role")


# --- validation ---------------------------------------------------------------------------------


def _check_list(
    field: str, values: Iterable[str], allowed: Iterable[str] | None = None
) -> list[str]:
    items = list(values)
    if allowed is not None:
        allowed_set = set(allowed)
        bad = [v for v in items if v not in allowed_set]
        if bad:
            raise Invalid(field, f"unknown value(s) {', '.join(map(repr, bad))}")
    if len(set(items)) != len(items):
        raise Invalid(field, "lists each value once")
    return items


def _check_languages(field: str, values: Iterable[str]) -> list[str]:
    items = _check_list(field, values)
    if len(items) > _LANG_MAX:
        raise Invalid(field, f"at most {_LANG_MAX} languages")
    for lang in items:
        if not (2 <= len(lang) <= 3 and lang.isalpha() and lang.islower()):
            raise Invalid(field, f"{lang!r} is not an ISO 639 language code (e.g. 'en', 'et')")
    return items


_LIST_CHECKS: dict[str, Any] = {
    "sectors": lambda v: _check_list("sectors", v, sector_choices()),
    "ics_protocols": lambda v: _check_list("ics_protocols", v, ICS_PROTOCOLS),
    "ics_vendors": lambda v: _check_list("ics_vendors", v),
    "languages": lambda v: _check_languages("languages", v),
    "legal_conditions": lambda v: _check_list("legal_conditions", v, LEGAL_CONDITIONS),
    "roles": lambda v: _check_list("roles", v, Role.values),
}


def _validate(obj: models.Model) -> None:
    """Model-level validation (choices, lengths, constraints) as an Invalid naming the field."""
    for name in _LIST_CHECKS:
        if hasattr(obj, name) and isinstance(getattr(obj, name), list):
            setattr(obj, name, _LIST_CHECKS[name](getattr(obj, name)))
    if isinstance(obj, PointOfContact):
        try:
            parse_on_call(obj.on_call)
            parse_timezone(obj.time_zone)
        except OnCallError as exc:
            raise Invalid("on_call" if "zone" not in str(exc) else "time_zone", str(exc)) from None
    clean_or_invalid(obj, exclude=["password"])
    if isinstance(obj, PointOfContact):
        # Webhook URLs must not reach the server's own networks (SSRF): refused when configured.
        from vcisc.notify.services import check_contact_channels

        check_contact_channels(obj)


def _save_new(actor: User | None, obj: M, now: datetime) -> M:
    _validate(obj)
    try:
        with transaction.atomic():
            obj.save()
            audit(actor, "create", obj, now=now, after=snapshot(obj))
    except IntegrityError as exc:
        raise Conflict(f"conflicts with an existing entry: {_integrity_hint(exc)}") from None
    return obj


def _integrity_hint(exc: IntegrityError) -> str:
    text = str(exc).lower()
    if "unique" in text or "duplicate" in text:
        return "a field that must be unique is already taken"
    return "a constraint was violated"


# --- generic update / deactivate ----------------------------------------------------------------

_EDITABLE: dict[type[models.Model], frozenset[str]] = {
    Nation: frozenset({"name", "kind", "eu_member"}),
    Organisation: frozenset({"name", "short_name", "kind", "nation_id"}),
    PointOfContact: frozenset(
        {"name", "email", "phone", "webhook_url", "languages", "time_zone", "on_call"}
    ),
    Capability: frozenset(
        {
            "service_type",
            "depth",
            "description",
            "sectors",
            "ics_protocols",
            "ics_vendors",
            "languages",
            "max_concurrent",
            "remote",
            "on_site",
            "lead_time_hours",
            "handling_conditions",
            "legal_conditions",
        }
    ),
    User: frozenset({"first_name", "last_name", "roles", "organisation_id"}),
}


def _require_edit_rights(actor: User | None, obj: models.Model) -> None:
    if isinstance(obj, Nation | Organisation):
        _require_operator(actor)
    elif isinstance(obj, PointOfContact | Capability):
        _require_org_manager(actor, obj.organisation_id)
    elif isinstance(obj, User):
        _require_user_admin(actor)
    else:  # pragma: no cover - programming error
        raise TypeError(type(obj))


def update(
    actor: User | None, obj: M, changes: Mapping[str, Any], *, now: datetime | None = None
) -> M:
    """Change editable fields of a directory entry; audit before/after."""
    now = _now(now)
    _require_edit_rights(actor, obj)
    editable = _EDITABLE[type(obj)]
    unknown = sorted(set(changes) - editable)
    if unknown:
        raise Invalid(unknown[0], "cannot be changed here")
    reject_nulls(type(obj), changes)
    with transaction.atomic():
        locked = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
        before = snapshot(locked)
        for name, value in changes.items():
            setattr(locked, name, value)
        if isinstance(locked, User):
            locked.is_staff = locked.has_role(Role.ADMIN)
        if isinstance(locked, Organisation):
            _check_org_shape(locked)
        _validate(locked)
        if isinstance(locked, User) and locked.has_role(Role.COORDINATOR):
            org = locked.organisation  # exists: _validate checked the reference
            if not (org and org.is_secretariat):
                raise Invalid("roles", "the coordinator role belongs to secretariat users")
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            raise Conflict(f"conflicts with an existing entry: {_integrity_hint(exc)}") from None
        audit(actor, "update", locked, now=now, before=before, after=snapshot(locked))
    return locked


def deactivate(actor: User | None, obj: M, *, now: datetime | None = None) -> M:
    """Deactivate rather than delete, so that history stays readable and references valid."""
    now = _now(now)
    _require_edit_rights(actor, obj)
    field = "is_active" if isinstance(obj, User) else "active"
    with transaction.atomic():
        locked = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
        if not getattr(locked, field):
            raise Conflict("already deactivated")
        before = snapshot(locked)
        setattr(locked, field, False)
        locked.save(update_fields=[field])
        if isinstance(locked, User):
            # A deactivated person's tokens die with the account.
            ApiToken.objects.filter(user=locked, revoked_at__isnull=True).update(revoked_at=now)
        audit(actor, "deactivate", locked, now=now, before=before, after=snapshot(locked))
    return locked


# --- creation -----------------------------------------------------------------------------------


def create_nation(
    actor: User | None,
    *,
    code: str,
    name: str,
    kind: str,
    eu_member: bool = False,
    now: datetime | None = None,
) -> Nation:
    _require_operator(actor)
    return _save_new(actor, Nation(code=code, name=name, kind=kind, eu_member=eu_member), _now(now))


def _check_org_shape(org: Organisation) -> None:
    if org.kind == OrgKind.SECRETARIAT:
        if org.nation_id is not None:
            raise Invalid("nation", "the secretariat acts for the federation, not for one nation")
        others = Organisation.objects.filter(kind=OrgKind.SECRETARIAT).exclude(pk=org.pk)
        if others.exists():
            raise Conflict("the federation has one secretariat already")
    elif org.nation_id is None:
        raise Invalid("nation", "required for every organisation but the secretariat")


def create_organisation(
    actor: User | None,
    *,
    name: str,
    kind: str,
    nation_code: str | None,
    short_name: str = "",
    now: datetime | None = None,
) -> Organisation:
    _require_operator(actor)
    nation = None
    if nation_code:
        nation = Nation.objects.filter(code=nation_code.upper(), active=True).first()
        if nation is None:
            raise Invalid("nation", f"no active nation with code {nation_code!r}")
    org = Organisation(name=name, kind=kind, nation=nation, short_name=short_name)
    _check_org_shape(org)
    return _save_new(actor, org, _now(now))


def _active_org(org_id: int) -> Organisation:
    org = Organisation.objects.filter(pk=org_id, active=True).first()
    if org is None:
        raise Invalid("organisation", f"no active organisation {org_id}")
    return org


def create_contact(
    actor: User | None, *, organisation_id: int, now: datetime | None = None, **fields: Any
) -> PointOfContact:
    _require_org_manager(actor, organisation_id)
    contact = PointOfContact(organisation=_active_org(organisation_id), **fields)
    return _save_new(actor, contact, _now(now))


def create_capability(
    actor: User | None, *, organisation_id: int, now: datetime | None = None, **fields: Any
) -> Capability:
    _require_org_manager(actor, organisation_id)
    org = _active_org(organisation_id)
    if org.is_secretariat:
        raise Invalid("organisation", "the secretariat coordinates and declares no capabilities")
    return _save_new(actor, Capability(organisation=org, **fields), _now(now))


def create_user(
    actor: User | None,
    *,
    email: str,
    organisation_id: int | None,
    roles: list[str],
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    now: datetime | None = None,
) -> User:
    """Create a person. Without a password the account can use API tokens only."""
    _require_user_admin(actor)
    now = _now(now)
    email = User.objects.normalize_email(email).lower()
    org = _active_org(organisation_id) if organisation_id is not None else None
    if Role.COORDINATOR.value in roles and not (org and org.is_secretariat):
        raise Invalid("roles", "the coordinator role belongs to secretariat users")
    if User.objects.filter(email=email).exists():
        raise Invalid("email", "an account with this e-mail address already exists")
    user = User(
        email=email,
        username=email,
        organisation=org,
        roles=roles,
        first_name=first_name,
        last_name=last_name,
        is_staff=Role.ADMIN.value in roles,
    )  # operators reach Django's admin
    if password:
        from django.contrib.auth.password_validation import validate_password

        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise Invalid("password", " ".join(exc.messages)) from None
        user.set_password(password)
    else:
        user.set_unusable_password()
    return _save_new(actor, user, now)


# --- tokens -------------------------------------------------------------------------------------


def create_token(
    actor: User | None,
    user: User,
    *,
    days: int,
    name: str = "",
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; return the row and the token text, which is never stored or shown again."""
    now = _now(now)
    if actor is not None and actor.pk != user.pk and not actor.has_role(Role.ADMIN):
        raise Forbidden("only an admin may issue tokens for someone else")
    if not user.is_active:
        raise Invalid("user", "the account is deactivated")
    if not 1 <= days <= 3650:
        raise Invalid("days", "must be between 1 and 3650")
    new = tokens.new_token()
    row = ApiToken(
        user=user,
        key_id=new.key_id,
        digest=tokens.digest(new.secret),
        name=name,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    with transaction.atomic():
        row.save()
        audit(actor, "create", row, now=now, after=snapshot(row))
    return row, new.text


def revoke_token(actor: User | None, token: ApiToken, *, now: datetime | None = None) -> ApiToken:
    now = _now(now)
    if actor is not None and actor.pk != token.user_id and not actor.has_role(Role.ADMIN):
        raise NotFound(f"token {token.key_id} not found")
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise Conflict("the token is already revoked")
        before = snapshot(locked)
        locked.revoked_at = now
        locked.save(update_fields=["revoked_at"])
        audit(actor, "revoke", locked, now=now, before=before, after=snapshot(locked))
    return locked


class TokenRejected(Exception):
    """Why a bearer token was refused (expired, revoked, unknown); shown to its bearer only."""


def authenticate_token(text: str, *, now: datetime | None = None) -> User:
    return check_token(text, now=now).user


def check_token(text: str, *, now: datetime | None = None) -> ApiToken:
    """The token's row (with its user and organisation) if ``text`` is a live token, its
    ``last_used_at`` stamped; else :class:`TokenRejected` with the reason."""
    now = _now(now)
    parts = tokens.split(text)
    if parts is None:
        raise TokenRejected("malformed token")
    key_id, secret = parts
    row = (
        ApiToken.objects.select_related("user", "user__organisation").filter(key_id=key_id).first()
    )
    if row is None or not tokens.matches(secret, row.digest):
        raise TokenRejected("unknown token")
    if row.revoked_at is not None:
        raise TokenRejected("token revoked")
    if row.expires_at <= now:
        raise TokenRejected("token expired")
    if not row.user.is_active:
        raise TokenRejected("account deactivated")
    # Coarse last-used stamp (once a minute at most) to keep reads from writing on every call.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def get_user_by_email(email: str) -> User:
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user

"""The federation directory: nations, organisations, points of contact, users, capabilities.

DOMAIN.md §1–2. Organisations are the unit of tenancy and of TLP "organisation".
Nothing here is ever deleted: directory entries are deactivated, so that history stays readable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.crypto import salted_hmac

from vcisc.vocabulary import Depth, ServiceType

__all__ = [
    "ApiToken",
    "Capability",
    "ExternalIdentity",
    "Nation",
    "NationKind",
    "OrgKind",
    "Organisation",
    "PointOfContact",
    "Role",
    "User",
]


class NationKind(models.TextChoices):
    MEMBER = "member", "Member"
    PARTNER = "partner", "Partner"
    OBSERVER = "observer", "Observer"


class OrgKind(models.TextChoices):
    CERT = "cert", "CERT / CSIRT"
    CYBER_COMMAND = "cyber-command", "Cyber command"
    LAW_ENFORCEMENT = "law-enforcement", "Law enforcement"
    INDUSTRY_PARTNER = "industry-partner", "Trusted industry partner"
    SECRETARIAT = "secretariat", "Secretariat"


class Role(models.TextChoices):
    LIAISON = "liaison", "National liaison officer"
    ANALYST = "analyst", "Analyst"
    COORDINATOR = "coordinator", "Secretariat coordinator"
    EXERCISE_CONTROL = "exercise-control", "Exercise control"
    OBSERVER = "observer", "Observer"
    ADMIN = "admin", "Administrator"


class Nation(models.Model):
    """A member state or partner nation, keyed by its ISO 3166-1 alpha-2 code."""

    code = models.CharField(
        max_length=2,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "an ISO 3166-1 alpha-2 code, upper case")],
    )
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=NationKind.choices)
    eu_member = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=NationKind.values), name="nation_kind_valid"
            ),
            models.CheckConstraint(condition=Q(code__regex=r"^[A-Z]{2}$"), name="nation_code_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Organisation(models.Model):
    """A national body acting for a nation; the secretariat is the one organisation without."""

    nation = models.ForeignKey(
        Nation, on_delete=models.PROTECT, null=True, blank=True, related_name="organisations"
    )
    name = models.CharField(max_length=200, unique=True)
    short_name = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=20, choices=OrgKind.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=OrgKind.values), name="org_kind_valid"),
            # Every organisation but the secretariat acts for a nation.
            models.CheckConstraint(
                condition=Q(kind="secretariat") | Q(nation__isnull=False),
                name="org_has_nation_unless_secretariat",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_secretariat(self) -> bool:
        return self.kind == OrgKind.SECRETARIAT


class PointOfContact(models.Model):
    """A designated person or desk that receives routed requests for its organisation."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="contacts"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    webhook_url = models.URLField(blank=True)
    languages = models.JSONField(default=list, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    #: Rota in the contact's time zone, see :mod:`vcisc.oncall` (e.g. ``mon-fri 08:00-18:00``).
    on_call = models.CharField(max_length=300, default="24/7")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        verbose_name = "point of contact"
        verbose_name_plural = "points of contact"
        constraints = [
            models.CheckConstraint(
                condition=~Q(email="") | ~Q(phone="") | ~Q(webhook_url=""),
                name="poc_has_a_channel",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.organisation})"


class Capability(models.Model):
    """An offer in principle from an organisation (DOMAIN.md §2)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="capabilities"
    )
    service_type = models.CharField(max_length=40, choices=ServiceType.choices)
    depth = models.CharField(max_length=10, choices=Depth.choices, default=Depth.ADVANCED)
    description = models.TextField(blank=True, max_length=4000)
    sectors = models.JSONField(default=list, blank=True, help_text="empty = any sector")
    ics_protocols = models.JSONField(default=list, blank=True)
    ics_vendors = models.JSONField(default=list, blank=True)
    languages = models.JSONField(default=list, blank=True)
    max_concurrent = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    remote = models.BooleanField(default=True)
    on_site = models.BooleanField(default=False)
    lead_time_hours = models.PositiveIntegerField(default=24)
    handling_conditions = models.TextField(blank=True, max_length=2000)
    legal_conditions = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__name", "service_type"]
        verbose_name_plural = "capabilities"
        constraints = [
            models.CheckConstraint(
                condition=Q(service_type__in=ServiceType.values), name="capability_service_valid"
            ),
            models.CheckConstraint(
                condition=Q(depth__in=Depth.values), name="capability_depth_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent__gte=1), name="capability_capacity_pos"
            ),
            models.CheckConstraint(
                condition=Q(remote=True) | Q(on_site=True), name="capability_remote_or_on_site"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation}: {self.service_type}"


class VciscUserManager(UserManager["User"]):
    """Users sign in with their e-mail address; ``username`` mirrors it."""

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra)


class User(AbstractUser):
    """A person with one organisation and a set of roles (DOMAIN.md §1)."""

    email = models.EmailField(unique=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    roles = models.JSONField(default=list, blank=True)
    #: Raised by "sign out everywhere": every session signed in before it stops being valid.
    session_epoch = models.PositiveIntegerField(default=0)

    objects: ClassVar[VciscUserManager] = VciscUserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        ordering = ["email"]

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Django checks this hash, kept in each session, on every request: a new password or
        a raised ``session_epoch`` ends every session signed in before."""
        return salted_hmac(
            "vcisc.federation.User.session_auth_hash",
            f"{self.password}|{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class ApiToken(models.Model):
    """A bearer token. Only a SHA-256 digest of the secret is stored; the secret is shown once.

    Tokens carry 256 bits of randomness, so a fast digest is enough (a slow password hash would
    only slow every API call); lookups use the public ``key_id`` and a constant-time compare.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="tokens")
    key_id = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="token_expires_after_creation",
            )
        ]

    def __str__(self) -> str:
        return f"token {self.key_id} of {self.user_id}"


class ExternalIdentity(models.Model):
    """A person's identity at an OpenID Connect provider, linked to their account.

    ``(issuer, subject)`` is the one identifier of an end-user that OpenID Connect promises is
    stable and never reassigned (Core 1.0 §2 ``sub``, §5.7): sign-ins find the account by it,
    never by e-mail address, so a changed address at the provider neither breaks nor hijacks
    an account. An account has at most one subject at an issuer (vcisc.web.oidc links them).
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="external_identities")
    #: The provider's issuer identifier, exactly as configured and as the ID token's ``iss``.
    issuer = models.CharField(max_length=255)
    #: The ID token's ``sub``: at most 255 ASCII characters (Core 1.0 §2), case-sensitive.
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["issuer", "subject"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="external_identity_issuer_subject_unique"
            ),
            models.UniqueConstraint(
                fields=["user", "issuer"], name="external_identity_one_per_issuer"
            ),
            models.CheckConstraint(
                condition=~Q(issuer="") & ~Q(subject=""), name="external_identity_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer} (user {self.user_id})"

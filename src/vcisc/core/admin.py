"""Django's admin, limited to what operators should touch.

Operators browse the directory, tokens, the notification outbox and the audit trail. Nothing is
edited in place: changes go through the audited services (here as admin actions; the CLI and API
for the rest). Requests for assistance, offers and engagement content are deliberately absent —
running the platform gives no right to read what nations share (need-to-know).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from vcisc.audit.models import AuditRecord
from vcisc.errors import DomainError
from vcisc.federation import services
from vcisc.federation.models import (
    ApiToken,
    Capability,
    Nation,
    Organisation,
    PointOfContact,
    User,
)
from vcisc.notify.models import OutboxMessage


def _is_operator(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_active:
        return False
    return bool(user.is_superuser or (isinstance(user, User) and user.has_role("admin")))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_operator(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _actor(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@admin.action(description="Deactivate (audited)")
def deactivate_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Model]
) -> None:
    done = 0
    for obj in queryset:
        try:
            services.deactivate(_actor(request), obj)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.WARNING)
    modeladmin.message_user(request, f"Deactivated {done}.")


@admin.action(description="Revoke (audited)")
def revoke_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiToken]
) -> None:
    for token in queryset.filter(revoked_at__isnull=True):
        services.revoke_token(_actor(request), token)
    modeladmin.message_user(request, "Revoked.")


class DirectoryAdmin(ReadOnlyAdmin):
    actions = [deactivate_selected]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for actions to show; the change form itself has no editable fields.
        return obj is None and _is_operator(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(Nation)
class NationAdmin(DirectoryAdmin):
    list_display = ("code", "name", "kind", "eu_member", "active")
    list_filter = ("kind", "eu_member", "active")
    search_fields = ("code", "name")


@admin.register(Organisation)
class OrganisationAdmin(DirectoryAdmin):
    list_display = ("name", "kind", "nation", "active")
    list_filter = ("kind", "active")
    search_fields = ("name", "short_name")


@admin.register(PointOfContact)
class ContactAdmin(DirectoryAdmin):
    list_display = ("name", "organisation", "email", "time_zone", "on_call", "active")
    list_filter = ("active",)
    search_fields = ("name", "email", "organisation__name")


@admin.register(Capability)
class CapabilityAdmin(DirectoryAdmin):
    list_display = ("organisation", "service_type", "depth", "max_concurrent", "active")
    list_filter = ("service_type", "depth", "active")
    search_fields = ("organisation__name",)


@admin.register(User)
class UserAdmin(DirectoryAdmin):
    list_display = ("email", "organisation", "roles", "is_active", "last_login")
    list_filter = ("is_active",)
    search_fields = ("email", "first_name", "last_name")
    exclude = ("password",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "password"]


@admin.register(ApiToken)
class TokenAdmin(ReadOnlyAdmin):
    list_display = (
        "key_id",
        "user",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    search_fields = ("key_id", "user__email")
    exclude = ("digest",)
    actions = [revoke_selected]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and _is_operator(request)


@admin.register(OutboxMessage)
class OutboxAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "organisation", "contact", "status", "attempts")
    list_filter = ("status", "kind")
    # Subjects and bodies may carry request titles: operators see delivery state only.
    exclude = ("subject", "body", "payload")


@admin.register(AuditRecord)
class AuditAdmin(ReadOnlyAdmin):
    list_display = ("seq", "at", "actor", "organisation", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor", "object_id")
    # Before/after snapshots of requests hold their content; the trail shows who did what.
    exclude = ("before", "after")


admin.site.site_header = "VCISC operations"
admin.site.site_title = "VCISC operations"

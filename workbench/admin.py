"""The admin reads everything; it changes things only through services, so
that every change lands in the trail."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db import models

from workbench.models import (
    AISystem,
    APIKey,
    Checkpoint,
    DeliveryAttempt,
    OutboxMessage,
    TrailEvent,
    User,
)
from workbench.services import Actor, api_key_revoke, outbox_retry
from workbench.services.users import user_change_record


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class WorkbenchUserAdmin(UserAdmin):
    """Users are changed here (roles, reporting line, password, standing),
    and each change is recorded in the trail in its transaction. They are
    not deleted: decisions name their reviewer; deactivate instead."""

    list_display = ["username", "email", "manager", "is_active", "last_login"]
    list_filter = ["groups", "is_active"]
    fieldsets = UserAdmin.fieldsets + (("Reporting line", {"fields": ["manager"]}),)

    def log_addition(self, request, obj, message):
        user_change_record(
            user=obj, actor=Actor.user(request.user), created=True, fields=_fields(message)
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        user_change_record(
            user=obj, actor=Actor.user(request.user), created=False, fields=_fields(message)
        )
        return super().log_change(request, obj, message)

    def has_delete_permission(self, request, obj=None):
        return False


def _fields(message) -> list[str]:
    """The field names in the admin's change message."""
    names = []
    for part in message if isinstance(message, list) else []:
        for what in ("added", "changed"):
            names += (part.get(what) or {}).get("fields", [])
    return [str(name) for name in names]


# Roles are the groups' fixed names (DESIGN §1): given on the user's page, not
# edited as groups.
admin.site.unregister(Group)


@admin.register(AISystem)
class AISystemAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "kind", "stopped", "created_at"]
    exclude = ["callback_secret"]
    # Said, not assumed: Django 5.x warns on every form with a URLField that
    # its default scheme changes to https in 6.0 (a 500 where warnings are errors).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(APIKey)
class APIKeyAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "system", "scope", "created_at", "revoked_at"]
    list_filter = ["system", "scope"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected keys (takes effect at once)")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key_id=key.pk, actor=Actor.user(request.user))
        self.message_user(request, f"revoked {queryset.count()} key(s)", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # Needed for the revoke action; the form itself has no editable field.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return ["system", "prefix", "scope", "created_at", "revoked_at"]


@admin.register(TrailEvent)
class TrailEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "action", "case", "system"]
    list_filter = ["action", "system"]
    search_fields = ["case"]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["seq", "hash", "key_id", "created_at"]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["at", "status_code", "error", "seconds"]
    readonly_fields = fields
    ordering = ["-at", "-pk"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "topic",
        "channel",
        "destination",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["delivery_id", "topic", "destination"]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request, queryset):
        scheduled = outbox_retry(message_ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - len(scheduled)
        self.message_user(
            request,
            f"{len(scheduled)} message(s) scheduled for delivery now"
            + (f"; {skipped} left alone (sent, or being sent right now)" if skipped else ""),
            messages.SUCCESS,
        )

    def has_retry_permission(self, request):
        return request.user.has_perm("workbench.change_outboxmessage")

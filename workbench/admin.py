"""The admin reads everything; it changes things only through services, so
that every change lands in the trail."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class WorkbenchUserAdmin(UserAdmin):
    list_display = ["username", "email", "manager", "is_active", "last_login"]
    list_filter = ["groups", "is_active"]
    fieldsets = UserAdmin.fieldsets + (("Reporting line", {"fields": ["manager"]}),)


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

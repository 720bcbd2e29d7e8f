"""The admin reads everything; it changes things only through services, so
that every change lands in the trail, naming the person who made it.

The pattern, for every model run from here: the change form's save calls one
service (``save_model``); anything else is a custom admin view or action
that checks who asks, validates a small form and calls one service
(``get_urls``, templates under ``templates/admin/<app>/<model>/``). What is
shown once (a new secret, a new API key) is rendered in the answer to the
POST that made it, never stored, logged or put in a message."""

import logging

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers

from workbench.admin_forms import AISystemForm, APIKeyForm, SwitchForm, UserChangeWithLineForm
from workbench.errors import WorkbenchError
from workbench.models import (
    AISystem,
    APIKey,
    Checkpoint,
    DeliveryAttempt,
    OutboxMessage,
    Role,
    SystemSwitch,
    TrailEvent,
    User,
)
from workbench.services import (
    Actor,
    ai_system_secret_rotate,
    ai_system_set_stopped,
    ai_system_update,
    api_key_create,
    api_key_revoke,
    outbox_retry,
    trail_integrate,
    webhook_test_send,
)
from workbench.services.systems import EDITABLE
from workbench.services.users import user_change_record

security_log = logging.getLogger("workbench.security")


def is_admin(user) -> bool:
    """Whether ``user`` holds the admin role (or is a superuser): only they
    handle secrets, i.e. rotate a callback secret and issue or revoke API keys."""
    return user.is_active and user.is_staff and (user.is_superuser or user.has_role(Role.ADMIN))


def require_admin(request, what: str, obj) -> None:
    """Refuse (403) and log a staff user without the admin role."""
    if not is_admin(request.user):
        security_log.warning(
            "refused %s of %s to %s: not an admin", what, obj, request.user.get_username()
        )
        raise PermissionDenied(f"only an admin may {what}")


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

    form = UserChangeWithLineForm
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


class SystemSwitchInline(admin.TabularInline):
    model = SystemSwitch
    fields = ["at", "stopped", "reason", "actor_type", "actor_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "stop or restart"
    verbose_name_plural = "kill switch history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class APIKeyInline(admin.TabularInline):
    model = APIKey
    fields = ["prefix", "scope", "created_at", "revoked_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AISystem)
class AISystemAdmin(admin.ModelAdmin):
    """AI systems: name, purpose, callback URL and webhook topics edited here
    (one ``system.changed`` event per save); the kill switch, the secret's
    rotation, new API keys and a test delivery on pages of their own."""

    form = AISystemForm
    list_display = ["slug", "name", "kind", "stopped", "callback_url", "created_at"]
    fieldsets = [
        (None, {"fields": ["slug", "kind", "name", "intended_purpose"]}),
        ("Webhooks", {"fields": ["callback_url", "webhook_topics", "secret_state"]}),
        ("Kill switch", {"fields": ["stopped", "switched_at", "switched_by", "switch_reason"]}),
        (None, {"fields": ["created_at"]}),
    ]
    readonly_fields = [
        "slug",
        "kind",
        "secret_state",
        "stopped",
        "switched_at",
        "switched_by",
        "switch_reason",
        "created_at",
    ]
    inlines = [SystemSwitchInline, APIKeyInline]
    actions = ["send_test_delivery"]
    # Said, not assumed: Django 5.x warns on every form with a URLField that
    # its default scheme changes to https in 6.0 (a 500 where warnings are errors).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False  # create_ai_system: it prints the first key, once

    def has_delete_permission(self, request, obj=None):
        return False  # cases, policies and the trail name it

    @admin.display(description="Callback secret")
    def secret_state(self, system):
        if not system.callback_secret:
            return "none"
        kind = "whsec_ (Standard Webhooks)" if system.callback_secret.startswith("whsec_") else ""
        state = f"set {kind}".strip() + "; never shown again (rotate it to get a new one)"
        if system.previous_secret_until:
            until = f"{system.previous_secret_until:%Y-%m-%d %H:%M} UTC"
            state += f"; the previous one also signs until {until}"
        return state

    def save_model(self, request, obj, form, change):
        # The form has put the new values on ``obj``; the service reads the
        # row again, changes what differs and records it.
        ai_system_update(
            system=obj,
            actor=Actor.user(request.user),
            **{field: form.cleaned_data[field] for field in form.changed_data if field in EDITABLE},
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/switch/",
                view(self.switch_view),
                name="workbench_aisystem_switch",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                view(self.rotate_secret_view),
                name="workbench_aisystem_rotate_secret",
            ),
            path(
                "<path:object_id>/new-key/",
                view(self.new_key_view),
                name="workbench_aisystem_new_key",
            ),
            path(
                "<path:object_id>/test-delivery/",
                view(self.test_delivery_view),
                name="workbench_aisystem_test_delivery",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "is_admin": is_admin(request.user)}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- Custom views: each checks who asks and calls one service --------------------------

    def _system(self, request, object_id: str, *, change: bool) -> AISystem:
        system = self.get_object(request, unquote(object_id))
        if system is None:
            raise Http404("no such AI system")
        allowed = self.has_change_permission if change else self.has_view_permission
        if not allowed(request, system):
            raise PermissionDenied
        return system

    def _page(self, request, template: str, title: str, system: AISystem | None, **context):
        return TemplateResponse(
            request,
            f"admin/workbench/aisystem/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": title,
                "original": system,
                "system": system,
                "change_url": (
                    reverse("admin:workbench_aisystem_change", args=[system.pk]) if system else ""
                ),
                **context,
            },
        )

    def switch_view(self, request, object_id: str):
        """Stop or restart the system, with a reason (``ai_system_set_stopped``)."""
        system = self._system(request, object_id, change=True)
        form = SwitchForm(request.POST or None, initial={"stopped": "0" if system.stopped else "1"})
        if request.method == "POST" and form.is_valid():
            try:
                system = ai_system_set_stopped(
                    system=system,
                    stopped=form.cleaned_data["stopped"],
                    reason=form.cleaned_data["reason"],
                    actor=Actor.user(request.user),
                )
            except WorkbenchError as exc:
                form.add_error("reason", exc.message)
            else:
                if system.stopped:
                    self.message_user(
                        request,
                        f"Stopped {system.slug}: every case it sends goes to a person.",
                        messages.WARNING,
                    )
                else:
                    self.message_user(
                        request, f"Restarted {system.slug}: its policy routes its cases again."
                    )
                return redirect("admin:workbench_aisystem_change", system.pk)
        stopping = form["stopped"].value() in ("1", True)
        title = f"{'Stop' if stopping else 'Restart'} {system.slug}"
        return self._page(request, "switch.html", title, system, form=form, stopping=stopping)

    def rotate_secret_view(self, request, object_id: str):
        """A new callback secret (``ai_system_secret_rotate``), shown once in
        the answer to the POST; admins only."""
        system = self._system(request, object_id, change=True)
        require_admin(request, "rotate the callback secret", system)
        if request.method != "POST":
            return self._page(
                request,
                "rotate_secret.html",
                f"Rotate the secret of {system.slug}",
                system,
                grace_hours=f"{settings.WEBHOOK_SECRET_GRACE_HOURS} hours",
            )
        rotated = ai_system_secret_rotate(system=system, actor=Actor.user(request.user))
        response = self._page(
            request,
            "rotate_secret.html",
            f"New secret for {system.slug}",
            rotated.system,
            secret=rotated.secret,
            previous_until=rotated.previous_until,
        )
        add_never_cache_headers(response)
        return response

    def new_key_view(self, request, object_id: str):
        """A new API key (``api_key_create``), its plaintext shown once in the
        answer to the POST; admins only."""
        system = self._system(request, object_id, change=True)
        require_admin(request, "create an API key", system)
        form = APIKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            issued = api_key_create(
                system=system, scope=form.cleaned_data["scope"], actor=Actor.user(request.user)
            )
            response = self._page(
                request, "new_key.html", f"New API key for {system.slug}", system, issued=issued
            )
            add_never_cache_headers(response)
            return response
        return self._page(
            request, "new_key.html", f"New API key for {system.slug}", system, form=form
        )

    def test_delivery_view(self, request, object_id: str):
        """Send a signed test delivery now (POST) and show the receiver's answer."""
        system = self._system(request, object_id, change=True)
        if request.method != "POST":
            return self._page(request, "test_delivery.html", "Test delivery", system)
        return self._test_results(request, [system])

    @admin.action(description="Send test delivery", permissions=["change"])
    def send_test_delivery(self, request, queryset):
        return self._test_results(request, list(queryset.order_by("slug")))

    def _test_results(self, request, systems: list[AISystem]):
        results = []
        for system in systems:
            try:
                results.append({"system": system, "result": webhook_test_send(system=system)})
            except WorkbenchError as exc:
                results.append({"system": system, "error": exc.message})
        first = systems[0]
        title = "Test delivery" if len(systems) == 1 else "Test deliveries"
        return self._page(
            request,
            "test_delivery.html",
            title,
            first if len(systems) == 1 else None,
            results=results,
        )


@admin.register(APIKey)
class APIKeyAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "system", "scope", "created_at", "revoked_at"]
    list_filter = ["system", "scope"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected keys (takes effect at once)")
    def revoke(self, request, queryset):
        require_admin(request, "revoke API keys", ", ".join(str(key) for key in queryset))
        for key in queryset:
            api_key_revoke(key_id=key.pk, actor=Actor.user(request.user))
        self.message_user(request, f"revoked {queryset.count()} key(s)", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # Needed for the revoke action (which itself wants the admin role);
        # the form has no editable field.
        return request.user.is_superuser or admin.ModelAdmin.has_change_permission(
            self, request, obj
        )

    def get_readonly_fields(self, request, obj=None):
        return ["system", "prefix", "scope", "created_at", "revoked_at"]


@admin.register(TrailEvent)
class TrailEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "action", "case", "system"]
    list_filter = ["action", "system"]
    search_fields = ["case"]

    def changelist_view(self, request, extra_context=None):
        trail_integrate()  # the events committed before the page was asked for
        return super().changelist_view(request, extra_context)


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

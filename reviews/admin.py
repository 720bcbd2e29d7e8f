"""The admin reads everything; it changes policies and reason codes only
through services, so that every change lands in the trail naming the person."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from reviews.models import Case, Policy, Queue, ReasonCode, ReviewTask
from reviews.routing import PolicyInvalid
from reviews.services import policy_dry_run, policy_publish, reason_code_save
from reviews.services.policies import MAX_POLICY_BYTES, policy_parse
from reviews.services.queue_members import queue_members_set
from reviews.services.reason_codes import reason_code_row_problems
from workbench.admin import ReadOnlyAdmin
from workbench.errors import WorkbenchError
from workbench.services import Actor


class QueueMembersAdminForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["members"]

    def clean_members(self):
        members = list(self.cleaned_data["members"])
        inactive = sorted(user.username for user in members if not user.is_active)
        if inactive:
            raise forms.ValidationError(
                f"an inactive user cannot be a member: {', '.join(inactive)}", code="inactive"
            )
        return members


@admin.register(Queue)
class QueueAdmin(ReadOnlyAdmin):
    """Queues change with their system's policy, which records each change;
    here only their members (``queue_members_set``, recorded too)."""

    list_display = ["slug", "system", "name", "role", "sla_hours", "reviews_required", "blind"]
    list_filter = ["system", "role"]
    form = QueueMembersAdminForm
    fields = ["system", "slug", "name", "role", "hold_limit", "release_cooldown_minutes", "members"]
    readonly_fields = [
        "system",
        "slug",
        "name",
        "role",
        "hold_limit",
        "release_cooldown_minutes",
    ]
    filter_horizontal = ["members"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("reviews.change_queue")

    def save_model(self, request, obj, form, change):
        pass  # nothing of the queue itself changes here

    def save_related(self, request, form, formsets, change):
        try:
            queue_members_set(
                queue=form.instance,
                users=list(form.cleaned_data["members"]),
                actor=Actor.user(request.user),
            )
        except WorkbenchError as error:
            messages.error(request, error.message)


class PolicyUploadForm(forms.Form):
    file = forms.FileField(
        label="Policy file",
        required=False,
        help_text="YAML or JSON, as docs/policy.md describes (at most 1 MiB).",
    )
    text = forms.CharField(
        label="…or paste it",
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "spellcheck": "false"}),
    )

    def clean(self):
        upload, text = self.cleaned_data.get("file"), self.cleaned_data.get("text")
        if upload is None and not text:
            raise forms.ValidationError("choose a policy file or paste its text")
        name = "the pasted policy"
        if upload is not None:
            if upload.size > MAX_POLICY_BYTES:
                raise forms.ValidationError("the file is larger than 1 MiB")
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("the file is not UTF-8 text") from None
            name = upload.name
        try:
            self.cleaned_data["document"] = policy_parse(text, name=name)
        except PolicyInvalid as error:
            raise forms.ValidationError(error.problems) from None
        return self.cleaned_data


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    """Published versions are never edited. A new one is uploaded, tried on
    the system's latest cases (the dry run), then published."""

    list_display = ["system", "version", "published_at", "published_by"]
    list_filter = ["system"]
    change_list_template = "admin/reviews/policy/change_list.html"

    def get_urls(self):
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="reviews_policy_upload",
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        if not request.user.has_perm("reviews.add_policy"):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta}
        posted = request.method == "POST"
        form = PolicyUploadForm(request.POST if posted else None, request.FILES if posted else None)
        context["title"] = "Upload a policy"
        if posted and "publish" in request.POST:
            # The document the dry run showed, sent back as JSON.
            form = PolicyUploadForm({"text": request.POST.get("document", "")})
            if form.is_valid():
                try:
                    published = policy_publish(
                        document=form.cleaned_data["document"], actor=Actor.user(request.user)
                    )
                except WorkbenchError as error:
                    context["problems"] = getattr(error, "problems", [error.message])
                else:
                    policy = published.policy
                    if published.created:
                        self.message_user(
                            request,
                            f"Published {policy.system.slug} policy version {policy.version}.",
                            messages.SUCCESS,
                        )
                    else:
                        self.message_user(
                            request,
                            f"Nothing changed: {policy.system.slug} version {policy.version} "
                            "is in force already.",
                            messages.INFO,
                        )
                    return redirect(reverse("admin:reviews_policy_changelist"))
        elif posted and form.is_valid():
            try:
                dry_run = policy_dry_run(document=form.cleaned_data["document"])
            except WorkbenchError as error:
                context["problems"] = getattr(error, "problems", [error.message])
            else:
                context["dry_run"] = dry_run
                context["document_json"] = json.dumps(dry_run.document, ensure_ascii=False)
        context["form"] = form
        return TemplateResponse(request, "admin/reviews/policy/upload.html", context)


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["reference", "system", "external_id", "status", "final_outcome", "created_at"]
    list_filter = ["system", "status"]
    search_fields = ["reference", "external_id"]
    exclude = ["input", "notice_token_hash"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "queue", "status", "priority", "due_at", "assignee"]
    list_filter = ["queue__system", "kind", "status"]
    raw_id_fields = ["case"]


class ReasonCodeForm(forms.ModelForm):
    class Meta:
        model = ReasonCode
        fields = [
            "system",
            "code",
            "description",
            "customer_text",
            "ground",
            "explanation",
            "active",
        ]

    def clean(self):
        data = super().clean()
        code = data.get("code", self.instance.code if self.instance.pk else "")
        _, problems = reason_code_row_problems(
            {
                "code": code or "",
                "description": data.get("description") or "",
                "customer_text": data.get("customer_text") or "",
                "ground": data.get("ground") or "",
                "explanation": data.get("explanation") or "",
            }
        )
        for name, message in problems:
            self.add_error(name if name in self.fields else None, message)
        return data


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    """Codes are added and edited here one at a time, or loaded as a file
    (load_reason_codes) or with a policy; each change is recorded. They are
    deactivated, never deleted: old decisions name them."""

    form = ReasonCodeForm
    list_display = ["code", "system", "active"]
    list_filter = ["system", "active"]
    search_fields = ["code", "description"]

    def get_readonly_fields(self, request, obj=None):
        return ["system", "code"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        # The form ran the catalog's checks; the service records the change.
        saved = reason_code_save(
            system=obj.system,
            code=obj.code,
            description=obj.description,
            customer_text=obj.customer_text,
            ground=obj.ground,
            explanation=obj.explanation,
            active=obj.active,
            actor=Actor.user(request.user),
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False

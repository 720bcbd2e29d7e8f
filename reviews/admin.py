from django.contrib import admin

from reviews.models import Case, Policy, Queue, ReasonCode, ReviewTask
from workbench.admin import ReadOnlyAdmin


@admin.register(Queue)
class QueueAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "role", "sla_hours", "reviews_required", "blind"]


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ["system", "version", "published_at", "published_by"]
    list_filter = ["system"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["reference", "system", "external_id", "status", "final_outcome", "created_at"]
    list_filter = ["system", "status"]
    search_fields = ["reference", "external_id"]
    exclude = ["input", "notice_token_hash"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "queue", "status", "priority", "due_at", "assignee"]
    list_filter = ["queue", "kind", "status"]
    raw_id_fields = ["case"]


@admin.register(ReasonCode)
class ReasonCodeAdmin(ReadOnlyAdmin):
    # Catalogs change only through load_reason_codes, which records each load.
    list_display = ["code", "system", "active"]
    list_filter = ["system", "active"]
    search_fields = ["code", "description"]

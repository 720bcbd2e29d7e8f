from django.contrib import admin

from escalations.models import Appeal, Evidence, LegalHold
from workbench.admin import ReadOnlyAdmin


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    # The statement stays sealed here: it is read on the appeal page, where
    # opening it is recorded.
    list_display = ["case", "number", "status", "outcome", "filed_at", "due_at", "decided_at"]
    list_filter = ["status", "outcome", "urgent"]
    search_fields = ["case__reference"]
    exclude = ["statement", "idempotency_key", "decision_key"]
    raw_id_fields = ["case", "task"]


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ["name", "appeal", "content_type", "size"]
    exclude = ["stored_as"]


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnlyAdmin):
    # Holds change only through the legal_hold command, which records each change.
    list_display = ["subject", "placed_at", "placed_by", "lifted_at"]

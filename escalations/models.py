import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.models import Case, ReviewTask, Subject


class Appeal(models.Model):
    """A customer's appeal against a final decision (DESIGN §3).

    The statement is the customer's own words: personal data, sealed with the
    subject's key like their contact details (DESIGN §7); the trail holds its
    digest only. The decision's reasons are written by staff for the customer.
    """

    class Status(models.TextChoices):
        RECEIVED = "received"
        UNDER_REVIEW = "under_review"
        DECIDED = "decided"

    class Outcome(models.TextChoices):
        UPHELD = "upheld"
        OVERTURNED = "overturned"
        MODIFIED = "modified"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="appeals")
    number = models.PositiveSmallIntegerField()  # 1 for the first appeal of the case
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    statement = models.BinaryField(null=True, editable=False)  # sealed; None once erased
    statement_sha256 = models.CharField(max_length=64)
    # The decision appealed against: its outcome, and when the notice was issued.
    outcome_appealed = models.CharField(max_length=64)
    notice_issued_at = models.DateTimeField()
    filed_at = models.DateTimeField()
    due_at = models.DateTimeField()
    urgent = models.BooleanField(default=False)
    task = models.OneToOneField(
        ReviewTask, null=True, on_delete=models.PROTECT, related_name="appeal"
    )
    idempotency_key = models.CharField(max_length=64, unique=True)
    statement_opened_at = models.DateTimeField(null=True, blank=True)
    statement_opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    final_outcome = models.CharField(max_length=64, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    reasons = models.TextField(blank=True)  # written for the customer, shown on the notice
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_key = models.CharField(max_length=64, null=True, blank=True, unique=True)  # noqa: DJ001
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="appeals_decided",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="appeal_number_unique"),
            # One open appeal per case, whatever races the filing.
            models.UniqueConstraint(
                fields=["case"], condition=~Q(status="decided"), name="one_open_appeal_per_case"
            ),
        ]
        indexes = [models.Index(fields=["filed_at"], name="appeal_filed_at")]

    def __str__(self):
        return f"appeal {self.number} of {self.case.reference}"


class Evidence(models.Model):
    """A file the customer sent with an appeal. Stored encrypted with the
    subject's key in the evidence storage (outside the web root) under a
    random name; served only to staff who may see the appeal."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    appeal = models.ForeignKey(Appeal, on_delete=models.PROTECT, related_name="evidence")
    name = models.CharField(max_length=200)  # the customer's file name, cleaned
    content_type = models.CharField(max_length=100)  # as found in the content
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_as = models.CharField(max_length=100)  # the storage name; blank once erased

    class Meta:
        verbose_name_plural = "evidence"

    def __str__(self):
        return self.name


class LegalHold(models.Model):
    """While a hold is in place, the subject's data may not be erased."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="legal_holds")
    reason = models.TextField()
    placed_at = models.DateTimeField()
    placed_by = models.CharField(max_length=150)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject"], condition=Q(lifted_at=None), name="one_active_hold_per_subject"
            )
        ]

    def __str__(self):
        return f"hold on {self.subject.reference}"

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from workbench.models import AISystem, Role


class Subject(models.Model):
    """The person a decision is about, by the AI system's pseudonymous reference.

    Contact details are sealed with this subject's own AES-GCM key; erasure
    destroys the key (DESIGN §7).
    """

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="subjects")
    reference = models.CharField(max_length=128)
    locale = models.CharField(max_length=16, default="en")
    key = models.BinaryField(null=True, editable=False)
    contact = models.BinaryField(null=True, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["system", "reference"], name="subject_unique_per_system"
            )
        ]

    def __str__(self):
        return self.reference


class SubjectText(models.Model):
    """Something the customer wrote (DESIGN §7): their turns of a chat
    conversation, the reason a case was contested, feedback. Sealed with the
    subject's key, bound to this row (``subject_text_seal``), and kept apart
    from the case, whose input holds the conversation without the customer's
    words, and from the trail, which holds at most ``sha256``. Erasure
    destroys the key and empties ``sealed``."""

    class Kind(models.TextChoices):
        CONVERSATION = "conversation"  # a chat case's customer turns: {turn index: text}
        CONTEST = "contest"  # why the case was contested
        FEEDBACK = "feedback"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="texts")
    case = models.ForeignKey(
        "Case", null=True, blank=True, on_delete=models.PROTECT, related_name="subject_texts"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sealed = models.BinaryField(null=True, editable=False)  # None once erased
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["case", "kind"], name="subject_text_case_kind")]

    def __str__(self):
        return f"{self.kind} of {self.subject_id}"


class Queue(models.Model):
    """A verification queue of one AI system: its policy creates and changes
    it, and names it by a slug unique within the system (DESIGN §3)."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="queues")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.REVIEWER)
    sla_hours = models.PositiveIntegerField(default=24)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    blind = models.BooleanField(default=False)
    lease_minutes = models.PositiveIntegerField(default=15)
    # A released task is not offered to the reviewer who released it again
    # for this long, unless nothing else is left for them (task_claim_next).
    release_cooldown_minutes = models.PositiveIntegerField(default=30, db_default=30)
    # How many tasks one reviewer may hold at once when claiming from here.
    hold_limit = models.PositiveSmallIntegerField(default=1, db_default=1)
    # Optional: when listed, only they see its counts, claim its tasks and
    # open its cases; when empty, everyone with the role (DESIGN §3).
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="queue_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "slug"], name="queue_slug_unique_per_system"),
            models.CheckConstraint(condition=Q(hold_limit__gte=1), name="queue_hold_limit_1_up"),
            models.CheckConstraint(
                condition=Q(reviews_required__in=[1, 2]), name="queue_reviews_required_1_or_2"
            ),
        ]

    def __str__(self):
        return self.slug


class Policy(models.Model):
    """One published version of an AI system's routing policy; never edited."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="policies")
    version = models.PositiveIntegerField()
    document = models.JSONField()
    digest = models.CharField(max_length=64)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.CharField(max_length=150)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["system", "version"], name="policy_version_unique")
        ]
        ordering = ["system", "-version"]

    def __str__(self):
        return f"{self.system.slug} v{self.version}"

    def is_adverse(self, outcome: str | None) -> bool:
        """Whether ``outcome`` goes against the subject (``adverse_outcomes``)."""
        return outcome in self.document.get("adverse_outcomes", [])


class Case(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"
        PENDING_REVIEW = "pending_review"
        IN_REVIEW = "in_review"
        FINALIZED = "finalized"
        UNDER_APPEAL = "under_appeal"
        APPEAL_DECIDED = "appeal_decided"

    class DecidedBy(models.TextChoices):
        AI = "ai"
        HUMAN = "human"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=32, unique=True)
    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="cases")
    external_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=AISystem.Kind.choices)
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="cases")
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    input = models.JSONField()
    output = models.JSONField()
    confidence = models.FloatField()
    explanation = models.TextField(blank=True)
    # For the customer's notice, as the AI system sent it: text, or {locale: text}.
    explanation_customer = models.JSONField(default=str, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # SHA-256 of the submitted body, to tell a resubmission from a conflict.
    body_digest = models.CharField(max_length=64)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="cases")
    # {rule, queue, policy_version, reason, conditions: [...every rule's result...]}
    route = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    final_outcome = models.CharField(max_length=64, blank=True)
    decided_by = models.CharField(max_length=8, choices=DecidedBy.choices, blank=True)
    notice_token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    # The first time the customer opened their notice link (``notice_open``):
    # set once, by whoever wins the conditional UPDATE.
    notice_opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["system", "external_id"], name="case_external_id_unique_per_system"
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="case_confidence_0_1"
            ),
        ]
        indexes = [
            # A system's latest cases (the outcomes they name: case_outcome_choices).
            models.Index(fields=["system", "-created_at"], name="case_system_recent"),
        ]

    def __str__(self):
        return self.reference

    @property
    def outcome(self) -> str:
        return self.output.get("outcome", "")


class ReviewTask(models.Model):
    """A unit of human work on a case, in one queue."""

    class Kind(models.TextChoices):
        REVIEW = "review"
        APPEAL = "appeal"
        QA = "qa"
        ESCALATION = "escalation"

    class Status(models.TextChoices):
        OPEN = "open"
        CLAIMED = "claimed"
        DONE = "done"
        CANCELLED = "cancelled"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="tasks")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.IntegerField(default=0)
    due_at = models.DateTimeField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every claim: a decision carries the token it was made under,
    # so a stale form from an earlier lease is refused.
    fencing_token = models.PositiveIntegerField(default=0)
    excluded = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="excluded_tasks"
    )
    # Who released the task last, and until when it is not offered to them
    # again (the queue's release_cooldown_minutes).
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    cooldown_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "kind"],
                condition=Q(status__in=["open", "claimed"]),
                name="one_open_task_per_case_and_kind",
            )
        ]
        indexes = [
            models.Index(
                fields=["queue", "status", "-priority", "due_at"], name="task_claim_order"
            ),
            # Claim next walks the open tasks in claim order (highest priority,
            # then earliest due) and stops at the first it may take.
            models.Index(
                fields=["-priority", "due_at", "id"],
                condition=Q(status="open"),
                name="task_open_claim_order",
            ),
            # What a reviewer holds: the hold limit's count at every claim.
            models.Index(fields=["assignee"], condition=Q(status="claimed"), name="task_held_by"),
            # The lease sweep, and the lazy check at every claim.
            models.Index(
                fields=["lease_expires_at"], condition=Q(status="claimed"), name="task_lease_expiry"
            ),
            # The oldest due time of a queue's open and claimed tasks (one
            # probe) and the supervisors' overdue counts.
            models.Index(
                fields=["queue", "due_at"],
                condition=Q(status__in=["open", "claimed"]),
                name="task_active_due",
            ),
        ]

    def __str__(self):
        return f"{self.kind} task for {self.case.reference}"


class CaseView(models.Model):
    """A compliance officer opened a case read-only, and why. The trail's
    ``case.viewed`` event holds the purpose's SHA-256 only (the AI system
    reads its cases' trail through the API); the words are kept here."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="views")
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_views"
    )
    purpose = models.TextField()
    purpose_sha256 = models.CharField(max_length=64)
    viewed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"{self.viewer_id} viewed {self.case_id}"


class Recusal(models.Model):
    """A reviewer stepped away from a case for a conflict of interest: they
    are excluded from its tasks for good. The trail's ``case.recused`` holds
    the reason's SHA-256; the words are kept here."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="recusals")
    task = models.ForeignKey("ReviewTask", on_delete=models.PROTECT, related_name="recusals")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recusals"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.reviewer_id} recused from {self.case_id}"


class QueueTaskCount(models.Model):
    """Open and claimed tasks per queue, kept by database triggers on the
    task table (migration 0005) so that the queue pages read a few rows
    instead of counting tens of thousands of open tasks on every view.

    The queue's counts are the sums over its rows. On PostgreSQL each
    connection adds its changes to a row of its own (``slot`` = its backend
    pid), so concurrent claimers never wait on a shared counter row; the
    beat folds those rows into ``slot`` 0 every minute
    (``queue_task_counts_fold``). On SQLite, with one writer at a time,
    there is only ``slot`` 0.
    """

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="task_counts")
    slot = models.IntegerField()
    open = models.IntegerField(default=0)
    claimed = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "slot"], name="queue_task_count_slot")
        ]

    def __str__(self):
        return f"{self.queue_id}/{self.slot}: {self.open} open, {self.claimed} claimed"


class ReasonCode(models.Model):
    """One code of an AI system's reason catalog (for claims, the CARC list),
    with the wording a customer reads in their notice."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="reason_codes")
    code = models.CharField(max_length=32)
    description = models.TextField()
    customer_text = models.TextField()
    # What the customer reads besides the reason itself, in the catalog's
    # language (English): the legal or contractual ground (a plan provision,
    # a terms clause, a statute) and what the decision relied on.
    ground = models.TextField(blank=True)
    explanation = models.TextField(blank=True)
    # The same in other languages: {locale: {"customer_text", "ground", "explanation"}}.
    translations = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["system", "code"]
        constraints = [
            models.UniqueConstraint(fields=["system", "code"], name="reason_code_unique_per_system")
        ]

    def __str__(self):
        return f"{self.code}: {self.description[:60]}"


class Decision(models.Model):
    """A person's verdict on a review task."""

    class Verdict(models.TextChoices):
        AGREE = "agree"
        OVERRIDE = "override"
        ESCALATE = "escalate"

    task = models.ForeignKey(ReviewTask, on_delete=models.PROTECT, related_name="decisions")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    outcome = models.CharField(max_length=64, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    seconds_spent = models.FloatField()
    # Whether the AI's outcome and confidence were on screen when the person
    # chose (blind queues hide them until then): the honest measure of bias.
    ai_visible = models.BooleanField()
    fencing_token = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            # Two reviews of one task come from two people.
            models.UniqueConstraint(fields=["task", "reviewer"], name="one_decision_per_reviewer")
        ]

    def __str__(self):
        return f"{self.verdict} on {self.case_id}"


class Feedback(models.Model):
    """The customer's answer to the notice's two questions about one final
    decision of a case (the first decision, or the appeal's): the latest
    scores, 1 to 5. A changed answer updates the row; the trail keeps every
    answer (``case.feedback``). The comment is the customer's text, sealed
    like any other (``SubjectText``, DESIGN §7): erasure empties it and
    leaves the scores."""

    class Stage(models.TextChoices):
        DECISION = "decision"
        APPEAL = "appeal"

    class Source(models.TextChoices):
        NOTICE = "notice"  # the customer answered on their notice page
        SYSTEM = "system"  # the AI system collected it in its own channel (API)

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="feedback")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    listened = models.PositiveSmallIntegerField()  # "Did we listen to you?"
    explained = models.PositiveSmallIntegerField()  # "Was the decision explained fairly?"
    decided_by = models.CharField(max_length=8, choices=Case.DecidedBy.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    channel = models.CharField(max_length=40, blank=True)
    comment = models.OneToOneField(
        SubjectText, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField()  # the first answer: the change window runs from it
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["case", "stage"], name="feedback_one_per_case_stage"),
            models.CheckConstraint(
                condition=Q(listened__gte=1) & Q(listened__lte=5), name="feedback_listened_1_5"
            ),
            models.CheckConstraint(
                condition=Q(explained__gte=1) & Q(explained__lte=5), name="feedback_explained_1_5"
            ),
        ]

    def __str__(self):
        return f"{self.stage} feedback on {self.case_id}"


class FeedbackInvitation(models.Model):
    """The customer was emailed an invitation to answer (the policy's
    ``feedback_invite``): at most one per case and stage."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="feedback_invitations")
    stage = models.CharField(max_length=16, choices=Feedback.Stage.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "stage"], name="feedback_invitation_once")
        ]

    def __str__(self):
        return f"{self.stage} invitation for {self.case_id}"

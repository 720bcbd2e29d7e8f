import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    """The role groups (contract: these exact group names)."""

    REVIEWER = "reviewer"
    APPEAL_REVIEWER = "appeal_reviewer"
    SUPERVISOR = "supervisor"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class User(AbstractUser):
    # The reporting line: an appeal must not go to anyone in it (DESIGN §1).
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )

    def has_role(self, role: str) -> bool:
        return any(group.name == role for group in self.groups.all())


class AISystem(models.Model):
    class Kind(models.TextChoices):
        CLAIM_DECISION = "claim_decision"
        CHATBOT_ANSWER = "chatbot_answer"
        CONTENT_MODERATION = "content_moderation"
        GENERIC = "generic"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    intended_purpose = models.TextField(blank=True)
    callback_url = models.URLField(blank=True)
    callback_secret = models.CharField(max_length=128, blank=True)
    # After a rotation the secret it replaced still signs webhook-signature
    # (beside the new one) until previous_secret_until (WEBHOOK_SECRET_GRACE_HOURS).
    # (Database defaults on the fields added since: rows written by code of
    # the version before, during a deploy, still go in.)
    previous_callback_secret = models.CharField(max_length=128, blank=True, db_default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # The optional webhook topics the system asked for (workbench.services.webhooks
    # OPTIONAL_TOPICS); the final outcomes are always sent.
    webhook_topics = models.JSONField(default=list, blank=True, db_default=[])
    # The kill switch: a stopped system's outputs all go to a person.
    stopped = models.BooleanField(default=False)
    # The latest stop or restart, readable (the trail holds the reason's
    # digest); every one is kept in SystemSwitch.
    switched_at = models.DateTimeField(null=True, blank=True)
    switched_by = models.CharField(max_length=150, blank=True, db_default="")
    switch_reason = models.TextField(blank=True, db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "AI system"

    def __str__(self):
        return self.slug


class SystemSwitch(models.Model):
    """One stop or restart of an AI system (the kill switch), with the reason
    as it was given, for supervisors and compliance to read later; the trail
    event of the same change holds its SHA-256."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="switches")
    stopped = models.BooleanField()
    reason = models.TextField()
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "system switches"

    def __str__(self):
        what = "stopped" if self.stopped else "restarted"
        return f"{self.system.slug} {what} at {self.at:%Y-%m-%d %H:%M}"


class APIKey(models.Model):
    class Scope(models.TextChoices):
        INGEST = "ingest"
        COMPLIANCE = "compliance"

    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="api_keys")
    # The key reads "wb_<prefix>_<secret>"; the prefix finds the row, the secret
    # is kept only as its SHA-256 (it has 256 bits of entropy, so no slow hash).
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.INGEST)
    # A compliance key reads the whole chain unless limited to its system's
    # events (answered with inclusion proofs against a signed checkpoint).
    only_system = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"wb_{self.prefix}_… ({self.system.slug}, {self.scope})"


class BodyText(models.Func):
    """A top-level text field of a trail event's JSON ``body``, read by the
    database (for the generated columns of ``TrailEvent``)."""

    output_field = models.CharField()

    def __init__(self, key: str):
        super().__init__(models.F("body"))
        self.key = key

    def as_postgresql(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(({sql})::jsonb ->> '{self.key}')", params

    def as_sqlite(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"json_extract({sql}, '$.{self.key}')", params


class TrailEvent(models.Model):
    """One link of the append-only chain (DESIGN §6).

    ``body`` is the event as RFC 8785 canonical JSON, without its hashes: the
    exact bytes that were hashed. ``at``, ``action``, ``case`` and ``system``
    are columns the database generates from the body, so that the trail can
    be queried without the copies ever disagreeing with what was hashed.
    The database refuses UPDATE and DELETE on this table (migration 0002).
    """

    seq = models.BigIntegerField(primary_key=True)
    body = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # The event time in its one textual form (UTC, microseconds, "Z"): fixed
    # width, so ranges compare as text.
    at = models.GeneratedField(
        expression=BodyText("at"),
        output_field=models.CharField(max_length=27),
        db_persist=True,
        db_index=True,
    )
    action = models.GeneratedField(
        expression=BodyText("action"),
        output_field=models.CharField(max_length=64),
        db_persist=True,
    )
    case = models.GeneratedField(
        expression=BodyText("case"),
        output_field=models.CharField(max_length=32, null=True),  # noqa: DJ001
        db_persist=True,
        db_index=True,
    )
    system = models.GeneratedField(
        expression=BodyText("system"),
        output_field=models.CharField(max_length=64, null=True),  # noqa: DJ001
        db_persist=True,
        db_index=True,
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(seq__gte=1), name="trail_seq_positive")]

    def __str__(self):
        return f"#{self.seq}"


class TrailPending(models.Model):
    """Events recorded, not sequenced yet (DESIGN §6): written in the
    transaction of the change they record, moved into the chain by the
    sequencer (``trail_integrate``) after that commits. ``id`` gives the
    order; ``events`` is a JSON array of ``[head, tail]`` pairs, an event's
    body being ``head + str(seq) + tail`` (``PreparedEntry``). PostgreSQL
    only: on SQLite events are chained in the change's transaction."""

    id = models.BigAutoField(primary_key=True)
    events = models.TextField()
    recorded_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"pending #{self.id}"


class TrailHead(models.Model):
    """The single row that holds the end of the chain.

    Only the sequencer locks it (``trail_integrate``): integrations run one
    at a time, so no gaps, no forks; writers never touch it.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="trail_head_single_row")]

    def __str__(self):
        return f"head at {self.seq}"


class Checkpoint(models.Model):
    """An Ed25519 signature over ``"<seq>:<hash>"`` of one point of the chain,
    and one over ``"tree:<seq>:<tree_root>"``: the RFC 6962 Merkle root of the
    hashes of events 1..seq, against which one event can be proven without
    the others (docs/bundle.md). ``tree_frontier`` keeps the roots of the
    tree's perfect subtrees, so that the next checkpoint extends it."""

    seq = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=64)
    tree_root = models.CharField(max_length=64, blank=True)
    tree_signature = models.CharField(max_length=128, blank=True)
    tree_frontier = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"checkpoint {self.seq}"


class TrailExport(models.Model):
    """An export of the trail that runs in Celery (large exports), with its
    progress; the file is written under ``EXPORT_ROOT`` and downloaded by
    compliance users."""

    class Format(models.TextChoices):
        BUNDLE = "bundle", "Verifiable bundle (zip)"
        JSONL = "jsonl", "Events as JSON lines"
        CSV = "csv", "Events as CSV"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        EXPIRED = "expired"  # done, and its file deleted after EXPORT_RETENTION_DAYS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trail_exports"
    )
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.BUNDLE)
    filters = models.JSONField(default=dict)  # from, to, system, case
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"trail export {self.id} ({self.status})"


class OutboxMessage(models.Model):
    """A message to send once its transaction has committed: a webhook to an
    AI system or an email. Written in the transaction of the change it
    announces, delivered by Celery with retries; ``delivery_id`` is stable
    across retries so that the receiver can drop a duplicate."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the retry window

    delivery_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    system = models.ForeignKey(
        AISystem, null=True, blank=True, on_delete=models.PROTECT, related_name="outbox"
    )
    destination = models.CharField(max_length=500)
    topic = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self):
        return f"{self.channel} {self.topic} → {self.destination} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at delivering an outbox message, for the admin to see."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The start of the receiver's answer (a webhook's), as the admin shows it.
    response_excerpt = models.CharField(max_length=500, blank=True, db_default="")
    seconds = models.FloatField()

    def __str__(self):
        return f"attempt at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:40]}"


# --- Compliance rollups (workbench.metrics.rollup) ----------------------------------------


class MetricsCursor(models.Model):
    """The single row that says how far the rollups have read the trail:
    every event up to ``seq`` is counted in them. The rollup update locks it,
    so two updates never count an event twice."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="metrics_cursor_single_row")]

    def __str__(self):
        return f"metrics at {self.seq}"


class DailyRollup(models.Model):
    """What happened on one UTC day to the cases of one AI system and model
    version, counted from the trail. Durations are kept as histograms over
    fixed log-scale buckets (``{bucket index: count}``, see
    ``metrics.duration_bucket``), so that medians and p90s over any range of
    days are read from a sum of buckets."""

    day = models.DateField()
    system = models.CharField(max_length=64)  # the AI system's slug, as in the trail
    model_version = models.CharField(max_length=100)
    received = models.PositiveIntegerField(default=0)
    routed_human = models.PositiveIntegerField(default=0)
    auto_finalized = models.PositiveIntegerField(default=0)
    auto_adverse = models.PositiveIntegerField(default=0)
    human_decided = models.PositiveIntegerField(default=0)
    human_adverse = models.PositiveIntegerField(default=0)
    agreed = models.PositiveIntegerField(default=0)
    overridden = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    qa_reviewed = models.PositiveIntegerField(default=0)
    qa_errors = models.PositiveIntegerField(default=0)
    appeals_filed = models.PositiveIntegerField(default=0)
    appeals_decided = models.PositiveIntegerField(default=0)
    appeals_upheld = models.PositiveIntegerField(default=0)
    appeals_overturned = models.PositiveIntegerField(default=0)
    appeals_modified = models.PositiveIntegerField(default=0)
    overdue = models.PositiveIntegerField(default=0)
    # {"rule:<name>" | "qa_sample" | "system_stopped": count} of the cases routed to a person
    routed_by = models.JSONField(default=dict)
    # {outcome appealed: {"filed", "upheld", "overturned", "modified": count}}
    appeals_by_basis = models.JSONField(default=dict)
    decide_hist = models.JSONField(default=dict)  # received -> human decision
    appeal_hist = models.JSONField(default=dict)  # appeal filed -> appeal decided
    # Hybrid AI-human figures (workbench.metrics.hybrid). By the day of the event:
    reviewer_seconds = models.PositiveBigIntegerField(default=0)  # recorded on verdicts
    verdicts_by_queue = models.JSONField(default=dict)  # {queue: {"agree", "override": n}}
    # {username: {"verdicts", "agreed", "fast_agreed", "fast_seconds"}}
    reviewers = models.JSONField(default=dict)
    # By the day the case was received (a cohort, updated as its cases are handled):
    touched = models.PositiveIntegerField(default=0)  # cases a person handled at least once
    reworked = models.PositiveIntegerField(default=0)  # cases a person handled again
    # {"escalation" | "second_review" | "appeal" | "again": handlings after the first}
    rework_by = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "system", "model_version"], name="daily_rollup_unique"
            )
        ]

    def __str__(self):
        return f"{self.day} {self.system} {self.model_version}"


class SegmentRollup(models.Model):
    """Outcomes of one UTC day for one value of a fairness segment (a field
    the AI system's policy names in ``fairness_segments``)."""

    day = models.DateField()
    system = models.CharField(max_length=64)
    segment = models.CharField(max_length=100)  # e.g. "metadata.region"
    value = models.CharField(max_length=100)  # "(none)" when the case has no such field
    finalized = models.PositiveIntegerField(default=0)  # first final outcomes (AI or person)
    adverse = models.PositiveIntegerField(default=0)
    human_decided = models.PositiveIntegerField(default=0)
    overridden = models.PositiveIntegerField(default=0)
    appeals_decided = models.PositiveIntegerField(default=0)
    appeals_changed = models.PositiveIntegerField(default=0)  # overturned or modified

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "system", "segment", "value"], name="segment_rollup_unique"
            )
        ]

    def __str__(self):
        return f"{self.day} {self.system} {self.segment}={self.value}"

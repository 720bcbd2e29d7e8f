from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


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
    # The kill switch: a stopped system's outputs all go to a person.
    stopped = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "AI system"

    def __str__(self):
        return self.slug


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
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"wb_{self.prefix}_… ({self.system.slug}, {self.scope})"


class TrailEvent(models.Model):
    """One link of the append-only chain (DESIGN §6).

    ``body`` is the event as RFC 8785 canonical JSON, without its hashes: the
    exact bytes that were hashed. The other columns copy fields of the body so
    that the trail can be queried; ``trail_verify`` checks that they agree.
    The database refuses UPDATE and DELETE on this table (migration 0002).
    """

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=64)
    # Nullable because the body says null for events of no case or system.
    case = models.CharField(max_length=32, null=True, blank=True, db_index=True)  # noqa: DJ001
    system = models.CharField(max_length=64, null=True, blank=True, db_index=True)  # noqa: DJ001
    body = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(seq__gte=1), name="trail_seq_positive")]

    def __str__(self):
        return f"#{self.seq} {self.action}"


class TrailHead(models.Model):
    """The single row that holds the end of the chain.

    Every append locks it, which serializes writers: no gaps, no forks.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="trail_head_single_row")]

    def __str__(self):
        return f"head at {self.seq}"


class Checkpoint(models.Model):
    """An Ed25519 signature over ``"<seq>:<hash>"`` of one point of the chain."""

    seq = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"checkpoint {self.seq}"

"""The intake API's request and response shapes (DESIGN §5, contract)."""

from typing import Any, Literal

from ninja import Schema
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from reviews.chat_messages import messages_read
from reviews.wording import wording_problems
from workbench.api import ErrorBody, TrailEventOut
from workbench.models import AISystem

Kind = Literal["claim_decision", "chatbot_answer", "content_moderation", "generic"]
assert set(Kind.__args__) == set(AISystem.Kind.values)


class Strict(Schema):
    model_config = ConfigDict(strict=True, extra="forbid")


class SubjectIn(Strict):
    reference: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    locale: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z_-]+$")


class ModelIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)


class ReasonIn(Strict):
    code: str = Field(min_length=1, max_length=32)
    text: str = Field(default="", max_length=1000)


class OutputIn(Strict):
    outcome: str = Field(min_length=1, max_length=64)
    summary: str = Field(default="", max_length=2000)
    reasons: list[ReasonIn] = Field(default_factory=list, max_length=50)
    answer: str | None = Field(default=None, max_length=20_000)


class TurnIn(Strict):
    role: Literal["customer", "assistant", "agent"]
    text: str = Field(max_length=20_000)


# DESIGN §5's example, in the OpenAPI document: the docs show it, and the
# schema tests send it (a denial the claims policy routes to a person).
CASE_EXAMPLE = {
    "external_id": "CLM-2026-000123",
    "kind": "claim_decision",
    "subject": {
        "reference": "MBR-8812",
        "name": "Ana Ruiz",
        "email": "ana@example.org",
        "locale": "en",
    },
    "model": {"name": "claims-triage", "version": "2026.11.1"},
    "input": {
        "claim": {"id": "C-2026-000123", "type": "professional"},
        "lines": [
            {
                "code": "99213",
                "description": "Office visit",
                "amount": 180.0,
                "reason_codes": ["CO-50"],
            }
        ],
    },
    "output": {
        "outcome": "deny",
        "summary": "Not medically necessary",
        "reasons": [{"code": "CO-50", "text": "Not deemed a medical necessity"}],
    },
    "confidence": 0.62,
    "explanation": "top features: procedure code, diagnosis pointer",
    "metadata": {"amount": 4200},
}


class CaseIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [CASE_EXAMPLE]})

    external_id: str = Field(min_length=1, max_length=200)
    kind: Kind
    subject: SubjectIn
    model: ModelIn
    input: dict[str, Any] = Field(
        description="What the model saw: free JSON, except for chatbot_answer, whose input "
        'holds the conversation so far, either as {"conversation": [{"role": "customer" | '
        '"assistant" | "agent", "text": "..."}]} or, in the OpenAI chat-completions format, as '
        '{"messages": [{"role": "system" | "developer" | "user" | "assistant" | "tool", '
        '"content": "..." or [content parts]}]} (not both). A user message is the customer\'s '
        "turn: routing reads the latest one, and its words are kept sealed. Text parts are "
        "joined with newlines; an image, audio or file part is kept as [image], [audio] or "
        "[file] and never fetched; an assistant message with tool_calls may have null content."
    )
    output: OutputIn
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    explanation: str = Field(default="", max_length=20_000)
    explanation_customer: str | dict[str, str] = Field(
        default="",
        description="For the customer's notice, in plain words: the main elements the "
        "system relied on for this output (AI Act art. 86, GDPR art. 15(1)(h)). Text, or "
        'text per locale: {"en": "...", "es": "..."}; the notice shows the customer\'s.',
        examples=["The amount billed was above what your plan pays for this service."],
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("explanation_customer")
    @classmethod
    def explanation_customer_is_plain_text(cls, value):
        problems = wording_problems(value, "explanation_customer") if value else []
        if problems:
            raise ValueError("; ".join(problem.partition(": ")[2] for problem in problems))
        return value

    # The input as sent, when it was read into another shape (input.messages):
    # the body digest is of what the system sent (same body again: 200).
    _input_sent: dict | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def conversation_for_chatbots(self):
        # A chatbot's input is the conversation so far; routing reads its
        # latest customer turn. Chat-completions messages are read into it.
        if self.kind != "chatbot_answer":
            return self
        if "messages" in self.input:
            if "conversation" in self.input:
                raise ValueError("input.messages: give the conversation or the messages, not both")
            turns, found = messages_read(self.input["messages"])
            if found:
                raise ValidationError.from_exception_data(
                    type(self).__name__,
                    [
                        InitErrorDetails(
                            type=PydanticCustomError("chat_message", "{text}", {"text": text}),
                            loc=("input", "messages", *path),
                            input=self.input["messages"],
                        )
                        for path, text in found
                    ],
                )
            rest = {key: value for key, value in self.input.items() if key != "messages"}
            self._input_sent = self.input
            self.input = {**rest, "conversation": turns}
            return self
        conversation = self.input.get("conversation")
        if not isinstance(conversation, list) or not conversation:
            raise ValueError(
                "input.conversation: a chatbot_answer needs the conversation so far, "
                'as [{"role": "customer", "text": "..."}, ...], or input.messages '
                "in the chat-completions format"
            )
        problems = []
        for index, turn in enumerate(conversation):
            try:
                TurnIn.model_validate(turn)
            except ValidationError as exc:
                # Re-rooted, so the client sees input.conversation.1.text,
                # not a bare "text" that names no field of the case.
                problems += [
                    InitErrorDetails(
                        type=error["type"],
                        loc=("input", "conversation", index, *error["loc"]),
                        input=error["input"],
                        ctx=error.get("ctx", {}),
                    )
                    for error in exc.errors(include_url=False)
                ]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


class BatchIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cases": [CASE_EXAMPLE]}]})

    # Any, not dict: an item that is not an object fails alone, with its own 422.
    cases: list[Any] = Field(
        min_length=1, max_length=1000, description="Up to 1,000 cases, each as in POST /cases."
    )


class RouteOut(Schema):
    rule: str | None
    queue: str | None
    policy_version: int


class CaseCreatedOut(Schema):
    id: str
    reference: str
    status: str
    route: RouteOut
    notice_url: str


class BatchItemOut(Schema):
    status: int
    id: str | None = None
    reference: str | None = None
    case_status: str | None = None
    route: RouteOut | None = None
    notice_url: str | None = None
    error: ErrorBody | None = None


class BatchOut(Schema):
    results: list[BatchItemOut]


class ContestIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "The member says the visit was urgent care."}]}
    )

    reason: str = Field(min_length=1, max_length=5000)


class FeedbackIn(Strict):
    """The customer's answers, collected by the AI system in its own channel."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"listened": 4, "explained": 3, "comment": "Quick answer, thanks.",
                          "channel": "chat-survey"}]
        }
    )  # fmt: skip

    listened: int = Field(ge=1, le=5, description='"Did we listen to you?" 1 (not at all) to 5.')
    explained: int = Field(
        ge=1, le=5, description='"Was the decision explained fairly?" 1 (not at all) to 5.'
    )
    comment: str | None = Field(
        default=None,
        max_length=2000,
        description="The customer's own words, plain text (no markup); kept sealed.",
    )
    channel: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]{1,40}$",
        description="Where the system asked, e.g. chat-survey, ivr, email.",
    )


class FeedbackOut(Schema):
    reference: str
    stage: Literal["decision", "appeal"]
    listened: int
    explained: int
    comment_sha256: str | None
    decided_by: Literal["ai", "human"]
    source: Literal["notice", "system"]
    channel: str | None
    answered_at: str = Field(description="The first answer (UTC); it can be changed for 14 days.")
    changed_at: str | None
    changed: bool = Field(description="Whether this replaced an earlier answer.")


class CaseOut(Schema):
    id: str
    reference: str
    external_id: str
    system: str
    status: str
    outcome: str | None
    decided_by: str | None
    reasons: list[dict[str, Any]]
    route: dict[str, Any]
    appeal: dict[str, Any] | None
    notice_url: str
    trail: list[TrailEventOut]


# --- Keeping in step: GET /api/v1/cases?updated_after= -----------------------------------


class CaseFeedQuery(Schema):
    updated_after: int = Field(
        default=0,
        ge=0,
        description="The cursor: 0 for every case, else a next_updated_after this "
        "operation returned (the trail seq of the last change read).",
    )
    limit: int = Field(default=100, ge=1, le=1000, description="Cases per page (at most 1,000).")


class CaseChangeOut(Schema):
    reference: str
    external_id: str
    status: str
    outcome: str | None = Field(description="The final outcome, once there is one.")
    decided_by: str | None = Field(description="ai or human, once final.")
    appeal: dict[str, Any] | None = Field(description="The latest appeal, as in GET /cases/{ref}.")
    seq: int = Field(description="The trail seq of the case's latest change on this page.")
    changed_at: str = Field(description="When that change was made (UTC).")


class CaseFeedOut(Schema):
    cases: list[CaseChangeOut]
    next_updated_after: int = Field(
        description="Pass it as updated_after for the next page, or later for what changed since."
    )
    has_more: bool = Field(description="Whether more changes are there to read right now.")


# --- Webhooks (declared in the OpenAPI document's ``webhooks``) ---------------------------


class WebhookReason(Schema):
    code: str | None
    text: str


class WebhookAppealDecided(Schema):
    number: int
    outcome: Literal["upheld", "overturned", "modified"]
    outcome_appealed: str
    filed_at: str
    decided_at: str


class CaseFinalizedWebhook(Schema):
    """A person finalized the case (DESIGN §5)."""

    reference: str
    external_id: str
    outcome: str
    decided_by: Literal["human", "ai"]
    verdict: Literal["agree", "override"] | None
    reasons: list[WebhookReason]
    appeal: None


class CaseAppealDecidedWebhook(Schema):
    """An appeal of the case was decided; ``outcome`` is the case's outcome now."""

    reference: str
    external_id: str
    outcome: str
    decided_by: Literal["human", "ai"]
    verdict: None
    reasons: list[WebhookReason]
    appeal: WebhookAppealDecided


class CaseWebhook(Schema):
    reference: str
    external_id: str
    status: str
    outcome: str | None
    decided_by: Literal["human", "ai"] | None


class WebhookRoute(Schema):
    rule: str | None
    queue: str | None
    policy_version: int
    reason: str | None


class CaseRoutedWebhook(CaseWebhook):
    """A case was received and routed (to a person, or finalized by the policy)."""

    route: WebhookRoute


class CaseEscalatedWebhook(CaseWebhook):
    """A reviewer escalated the case, or two reviews disagreed (``disagreement``)."""

    queue: str
    disagreement: bool


class CaseOverdueWebhook(CaseWebhook):
    """A task of the case was not decided by its due time and went to ``queue``."""

    task_kind: Literal["review", "appeal", "qa", "escalation"]
    queue: str
    due_at: str


class CaseContestedWebhook(CaseWebhook):
    """The case was contested; ``queue`` is where it went (None: it was with a person)."""

    queue: str | None


class WebhookAppealFiled(Schema):
    number: int
    outcome_appealed: str
    filed_at: str
    due_at: str


class AppealFiledWebhook(CaseWebhook):
    """The customer appealed the decision."""

    appeal: WebhookAppealFiled


CASE_WEBHOOKS = {
    "case.finalized": CaseFinalizedWebhook,
    "case.appeal_decided": CaseAppealDecidedWebhook,
    "case.routed": CaseRoutedWebhook,
    "case.escalated": CaseEscalatedWebhook,
    "case.overdue": CaseOverdueWebhook,
    "case.contested": CaseContestedWebhook,
    "appeal.filed": AppealFiledWebhook,
}

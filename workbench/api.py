"""The REST API (DESIGN §5, contract) on django-ninja.

Why django-ninja: request and response shapes are pydantic models, which gives
strict validation with the path of every bad field and the OpenAPI document
from the same code, with less machinery than DRF plus a schema generator.
"""

import json
import math
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import is_ratelimited
from ninja import NinjaAPI, Query, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth
from pydantic import Field

from workbench.errors import RateLimited, WorkbenchError
from workbench.models import APIKey, Role
from workbench.selectors import trail_events_after, trail_events_of_system, trail_head
from workbench.services import AuthenticationFailed, api_key_authenticate, trail_public_key_pem
from workbench.services.webhooks import OPTIONAL_TOPICS

MAX_JSON_DEPTH = 32


class BodyError(WorkbenchError):
    status = 400


class StrictJSONParser(Parser):
    """JSON that is valid UTF-8, has no NaN/Infinity (nor numbers that overflow to
    it), no text a database cannot store, and nests at most 32 deep."""

    def parse_body(self, request: HttpRequest):
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BodyError(
                f"the body is not valid UTF-8 (byte {exc.start})", "bad_encoding"
            ) from None
        try:
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError:
            raise BodyError("the JSON nests too deep", "too_deep") from None
        except ValueError as exc:
            raise BodyError(f"malformed JSON: {exc}", "malformed_json") from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise BodyError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels", "too_deep")
        # Only a \u escape can put U+0000 or a lone surrogate into the parsed
        # text; PostgreSQL refuses both (in text and in jsonb), so refuse them here.
        if "\\u" in text and _has_unstorable_text(data):
            raise BodyError(
                "the JSON holds \\u0000 or a lone surrogate (\\ud800-\\udfff), which is not text",
                "bad_encoding",
            )
        return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    # 1e999 parses to inf: the same as Infinity, which no database stores.
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range for a JSON number")
    return value


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _has_unstorable_text(value) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if UNSTORABLE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <api key>``; one key belongs to one AI system."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token):
        try:
            key = api_key_authenticate(plaintext=token, scope=self.scope)
        except AuthenticationFailed as exc:
            request.auth_problem = exc.message
            return None
        request.api_key = key
        # Per key, so that one runaway client cannot starve the others; a
        # batch of up to 1,000 cases counts once. The count is kept in the
        # cache (Redis): while Redis is down the request goes through
        # unlimited, and is logged, rather than intake failing with it
        # (workbench/cache.py, RATELIMIT_FAIL_OPEN).
        limited = is_ratelimited(
            request,
            group="api-key",
            key=lambda group, request: key.prefix,
            rate=settings.API_RATE_PER_KEY,
            increment=True,
        )
        if limited:
            raise RateLimited(
                f"too many requests for this API key (limit {settings.API_RATE_PER_KEY}); "
                f"retry in {RateLimited.retry_after} s"
            )
        return key


class ComplianceSession(SessionAuth):
    """A logged-in compliance officer's browser session."""

    def authenticate(self, request, key):
        user = request.user
        if user.is_authenticated and user.has_role(Role.COMPLIANCE):
            return user
        return None


ingest_auth = ApiKeyAuth(APIKey.Scope.INGEST)
compliance_auth = [ApiKeyAuth(APIKey.Scope.COMPLIANCE), ComplianceSession()]

# --- Webhooks, as OpenAPI 3.1 declares them (the document's ``webhooks``) ---------------

WEBHOOK_HEADERS = [
    ("webhook-id", "The message id (Standard Webhooks): the same on every retry.", "string"),
    (
        "webhook-timestamp",
        "Unix seconds of this attempt; refuse one older than 5 minutes.",
        "integer",
    ),
    (
        "webhook-signature",
        'Space-separated v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"> with the '
        "base64-decoded part of a whsec_ secret (else its UTF-8 bytes); two while a "
        "rotated secret is still honoured.",
        "string",
    ),
    (
        "X-Workbench-Signature",
        "sha256=<hex HMAC-SHA256 of the body>, keyed with the secret exactly as printed.",
        "string",
    ),
    ("X-Workbench-Delivery", "The delivery id (= webhook-id): drop a duplicate by it.", "string"),
    ("X-Workbench-Topic", "The topic, as named here.", "string"),
    ("X-Workbench-Attempt", "1 for the first try, 2 for the first retry, ...", "integer"),
]


class WorkbenchAPI(NinjaAPI):
    """django-ninja's API, which also declares the webhooks it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.webhooks: dict[str, tuple[type[Schema], str]] = {}

    def add_webhook(self, topic: str, schema: type[Schema], *, summary: str) -> None:
        """Declare the webhook ``topic`` and its body's shape."""
        self.webhooks[topic] = (schema, summary)

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        webhooks = {}
        for topic, (schema, summary) in sorted(self.webhooks.items()):
            body = schema.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[schema.__name__] = body
            webhooks[topic] = {
                "post": {
                    "operationId": "webhook_" + topic.replace(".", "_"),
                    "summary": summary,
                    "description": (schema.__doc__ or "").strip()
                    + "\n\nSent to the AI system's callback URL"
                    + (
                        " when it subscribed to this topic (off by default)."
                        if topic in OPTIONAL_TOPICS
                        else "."
                    ),
                    "tags": ["webhooks"],
                    "parameters": [
                        {
                            "name": name,
                            "in": "header",
                            "required": True,
                            "description": description,
                            "schema": {"type": kind},
                        }
                        for name, description, kind in WEBHOOK_HEADERS
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{schema.__name__}"}
                            }
                        },
                    },
                    "responses": {
                        "2XX": {
                            "description": "Received. Any other answer, or none within "
                            "10 s, is retried with backoff for 25 hours."
                        }
                    },
                }
            }
        document["webhooks"] = webhooks
        return document


class TestWebhook(Schema):
    """A test delivery, sent from the admin (Send test delivery); no case changed."""

    test: bool
    system: str
    sent_at: str
    message: str


api = WorkbenchAPI(
    title="Workbench API",
    version="1",
    description="Submit AI outputs for routing and human review; read the decision trail.",
    parser=StrictJSONParser(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    urls_namespace="api",
)


# --- Errors: one shape for every status the API answers with ---------------------------


class FieldProblem(Schema):
    path: str
    message: str


class ErrorBody(Schema):
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorOut(Schema):
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[Schema]]:
    """``response=`` entries for the error statuses an operation can answer with."""
    return {status: ErrorOut for status in statuses}


# An API key over its rate gets 429 and is told when to come back; documented
# on each operation behind a key (``openapi_extra``: ninja declares no headers).
RATE_LIMITED = {
    "responses": {
        429: {
            "description": "Too many requests for this API key",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before the next request",
                    "schema": {"type": "integer", "minimum": 0},
                    "required": True,
                }
            },
        }
    }
}


def error_response(request, *, status: int, code: str, message: str, fields=None):
    body = {"error": {"code": code, "message": message, "fields": fields or []}}
    return api.create_response(request, body, status=status)


@api.exception_handler(WorkbenchError)
def _workbench_error(request, exc: WorkbenchError):
    response = error_response(
        request, status=exc.status, code=exc.code, message=exc.message, fields=exc.fields
    )
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    fields = []
    for problem in exc.errors:
        # ninja prefixes the location with where it came from and the
        # parameter's name ("body", "payload"): the client wants the field.
        loc = [str(part) for part in problem.get("loc", [])]
        if loc[:1] in (["body"], ["query"], ["path"]):
            loc = loc[2:] if loc[:1] == ["body"] else loc[1:]
        message = problem.get("msg", "invalid")
        if not loc and message.startswith("Value error, "):
            path, _, message = message.removeprefix("Value error, ").partition(": ")
            loc = [path]
        fields.append({"path": ".".join(loc) or "(body)", "message": message})
    return error_response(
        request, status=422, code="invalid", message="the request is invalid", fields=fields
    )


@api.exception_handler(AuthenticationError)
def _authentication_error(request, exc):
    message = getattr(request, "auth_problem", None) or (
        "missing or unknown credentials: send Authorization: Bearer <api key>"
    )
    return error_response(request, status=401, code="unauthenticated", message=message)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    cause = exc.__cause__
    if isinstance(cause, WorkbenchError):  # our parser's complaint, wrapped by ninja
        return _workbench_error(request, cause)
    return error_response(request, status=exc.status_code, code="http_error", message=str(exc))


# --- The trail, for compliance tooling --------------------------------------------------

trail_router = Router(tags=["trail"], auth=compliance_auth)


class ProofOut(Schema):
    """An RFC 9162 audit path of leaf ``seq - 1`` in the tree of ``tree_size``
    leaves, whose root a checkpoint signs (docs/bundle.md, proofs.jsonl)."""

    tree_size: int
    path: list[str]


class TrailEventOut(Schema):
    """An event as exported (DESIGN §6): its body plus the two hashes; with
    its inclusion proof when the key reads one system's events only."""

    seq: int
    at: str
    action: str
    case: str | None
    system: str | None
    actor: dict[str, str]
    data: dict[str, Any]
    prev_hash: str
    hash: str
    proof: ProofOut | None = None


class CheckpointOut(Schema):
    seq: int
    hash: str
    signature: str
    key_id: str


class TreeCheckpointOut(CheckpointOut):
    tree_root: str
    tree_signature: str


class TrailPage(Schema):
    events: list[TrailEventOut]
    next_after: int | None
    head_seq: int
    # Keys limited to one system: the signed checkpoint the proofs lead to;
    # its seq is as far as the answer reaches (resume after it when caught up).
    checkpoint: TreeCheckpointOut | None = None


class TrailHeadOut(Schema):
    seq: int
    hash: str
    checkpoint: CheckpointOut | None


class TrailQuery(Schema):
    after: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=10_000)


@trail_router.get(
    "",
    response={200: TrailPage, **errors(401, 422, 429)},
    openapi_extra=RATE_LIMITED,
    summary="Trail events after a seq, in order",
    description="The whole chain, for a compliance key or session. A key made with "
    "`create_api_key SLUG --scope compliance --only-system` reads only its system's "
    "events, up to the latest signed checkpoint, each with its inclusion proof.",
)
def trail_list(request, query: Query[TrailQuery]):
    key = getattr(request, "api_key", None)
    head = trail_head()
    if key is not None and key.only_system:
        page = trail_events_of_system(system=key.system.slug, after=query.after, limit=query.limit)
        events, checkpoint = page.events, page.checkpoint
        return {
            "events": events,
            "next_after": events[-1]["seq"] if page.more else None,
            "head_seq": head["seq"],
            "checkpoint": checkpoint,
        }
    events = trail_events_after(after=query.after, limit=query.limit)
    last = events[-1]["seq"] if events else None
    more = last is not None and last < head["seq"]
    return {"events": events, "next_after": last if more else None, "head_seq": head["seq"]}


@trail_router.get(
    "/head",
    response={200: TrailHeadOut, **errors(401, 429)},
    openapi_extra=RATE_LIMITED,
    summary="The end of the chain and its latest signed checkpoint",
)
def trail_head_get(request):
    return trail_head()


@trail_router.get(
    "/public-key",
    auth=None,
    openapi_extra={
        "responses": {
            200: {
                "description": "OK",
                "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
            }
        }
    },
    summary="The checkpoint signing key (PEM)",
)
def trail_public_key(request):
    return HttpResponse(trail_public_key_pem(), content_type="application/x-pem-file")


api.add_router("/trail", trail_router)
api.add_webhook("webhook.test", TestWebhook, summary="A test delivery")

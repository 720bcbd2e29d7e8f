"""One small world for the security tests: two AI systems, a person in every
role, a case in each system's queue held by its reviewer, an appealed case
with evidence, a decided case still open to appeal, trail exports of two
compliance officers, API keys, and a row of every model the admin shows."""

import uuid
from dataclasses import dataclass, field

import pytest
from axes.models import AccessFailureLog
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from escalations.models import Appeal, Evidence
from escalations.services import appeal_file, appeal_statement_open
from escalations.services.erasure import legal_hold_place
from reviews.models import Case, ReviewTask
from reviews.services.assignment import task_claim_next
from reviews.services.notices import notice_token
from tests import factories
from tests.factories import client_for
from workbench.models import AISystem, APIKey, TrailExport, User
from workbench.services import api_key_create, api_key_revoke
from workbench.services.export import export_path
from workbench.services.trail import trail_checkpoint

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

# Who asks (DESIGN §1), as the matrix names them.
ROLES = (
    "anon",
    "reviewer",  # rev.alice: holds the task of case_a (claims-ai, claims-review)
    "reviewer_b",  # rev.bob: holds the task of case_b (support-bot, chat-escalations)
    "appeal_reviewer",  # appeal.carol: holds the appeal of case_appealed, statement opened
    "supervisor",
    "compliance",  # comp.dana; comp.erin's export is not hers
    "admin",  # staff and superuser
    "key_a",  # an ingest key of claims-ai
    "key_compliance",  # a compliance-scoped key of claims-ai: the whole chain
    "key_compliance_own",  # the same, limited to claims-ai's events (--only-system)
    "key_revoked",  # an ingest key of claims-ai, revoked
    "customer_b",  # the customer of case_b: holds its notice link and nothing else
)


@dataclass
class World:
    system_a: AISystem
    system_b: AISystem
    users: dict[str, User]
    case_a: Case
    case_b: Case
    case_appealed: Case  # decided by rev.alice, appealed with evidence
    case_decided: Case  # decided by rev.alice, open to appeal
    appeal: Appeal
    evidence: Evidence
    export_own: TrailExport  # comp.dana's, done, with its file
    export_other: TrailExport  # comp.erin's, done, with its file
    keys: dict[str, str]  # role -> plaintext API key
    sessions: dict[str, str]  # role -> session key of the person logged in
    _clients: dict[str, Client] = field(default_factory=dict)

    def task(self, case: Case) -> ReviewTask:
        """The case's live task."""
        return case.tasks.exclude(status=ReviewTask.Status.DONE).order_by("-id").get()

    def client(self, role: str) -> Client:
        """A client asking as ``role``, without the cookies of its last
        request: a session for people, a bearer header for keys. The
        customer's notice link is no credential anywhere else: offered as a
        key it is refused like any other string. (Clients are kept: each new
        one loads the middleware again, WhiteNoise's scan of the static files
        included.)"""
        if role not in self._clients:
            if role in self.keys:
                headers = {"authorization": f"Bearer {self.keys[role]}"}
            elif role == "customer_b":
                headers = {"authorization": f"Bearer {notice_token(self.case_b.reference)}"}
            else:
                assert role == "anon" or role in self.sessions, role
                headers = {}
            self._clients[role] = Client(headers=headers)
        client = self._clients[role]
        client.cookies.clear()
        if role in self.sessions:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client

    @property
    def cases(self) -> list[Case]:
        return [self.case_a, self.case_b, self.case_appealed, self.case_decided]


def build_world() -> World:
    system_a = factories.system_with_policy()
    system_b = factories.system_with_policy(factories.SUPPORT_POLICY)
    factories.reason_code(system_a)
    user = factories.UserFactory
    users = {
        "reviewer": user(username="rev.alice", role="reviewer"),
        "reviewer_b": user(username="rev.bob", role="reviewer"),
        "appeal_reviewer": user(username="appeal.carol", role="appeal_reviewer"),
        "supervisor": user(username="sup.sam", role="supervisor"),
        "compliance": user(username="comp.dana", role="compliance"),
        "admin": user(username="admin.root", role="admin", is_staff=True, is_superuser=True),
    }
    erin = user(username="comp.erin", role="compliance")

    # Decided first: decided_case claims the next task in alice's queues.
    case_appealed = factories.decided_case(system_a, users["reviewer"], n=1)
    case_decided = factories.decided_case(system_a, users["reviewer"], n=4)
    appeal = appeal_file(
        case=case_appealed,
        statement="The visit was necessary.",
        evidence=[SimpleUploadedFile("letter.pdf", PDF, content_type="application/pdf")],
        idempotency_key=uuid.uuid4().hex,
    )
    task = task_claim_next(user=users["appeal_reviewer"])
    appeal_statement_open(
        task_id=task.pk, user=users["appeal_reviewer"], fencing_token=task.fencing_token
    )
    appeal.refresh_from_db()

    case_a = factories.ingest(system_a, factories.claim_payload(2))
    task_claim_next(user=users["reviewer"], queue_slug="claims-review")
    case_b = factories.ingest(system_b, factories.chat_payload(3, text="I want a human now"))
    task_claim_next(user=users["reviewer_b"], queue_slug="chat-escalations")

    exports = []
    for owner in (users["compliance"], erin):
        export = TrailExport.objects.create(
            requested_by=owner,
            format=TrailExport.Format.JSONL,
            status=TrailExport.Status.DONE,
            file_name="trail.jsonl",
        )
        export_path(export).parent.mkdir(parents=True, exist_ok=True)
        export_path(export).write_text(f'{{"owner": "{owner.username}"}}\n')
        exports.append(export)

    revoked = api_key_create(system=system_a, actor=factories.ACTOR)
    api_key_revoke(key_id=revoked.key.pk, actor=factories.ACTOR)
    keys = {
        "key_a": api_key_create(system=system_a, actor=factories.ACTOR).plaintext,
        "key_compliance": api_key_create(
            system=system_a, scope=APIKey.Scope.COMPLIANCE, actor=factories.ACTOR
        ).plaintext,
        "key_compliance_own": api_key_create(
            system=system_a,
            scope=APIKey.Scope.COMPLIANCE,
            only_system=True,
            actor=factories.ACTOR,
        ).plaintext,
        "key_revoked": revoked.plaintext,
    }
    # A row for every model the admin lists: a hold, a checkpoint, and the
    # login records of django-axes (a failed login; each session below).
    legal_hold_place(
        reference=case_decided.subject.reference, reason="litigation", by=factories.ACTOR
    )
    trail_checkpoint(sign_head=True)
    Client().post("/accounts/login/", {"username": "rev.alice", "password": "wrong"})
    AccessFailureLog.objects.create(
        username="rev.alice", ip_address="127.0.0.1", user_agent="", path_info="/accounts/login/"
    )
    sessions = {
        role: client_for(person).cookies[settings.SESSION_COOKIE_NAME].value
        for role, person in users.items()
    }
    return World(
        system_a=system_a,
        system_b=system_b,
        users=users,
        case_a=case_a,
        case_b=case_b,
        case_appealed=case_appealed,
        case_decided=case_decided,
        appeal=appeal,
        evidence=appeal.evidence.get(),
        export_own=exports[0],
        export_other=exports[1],
        keys=keys,
        sessions=sessions,
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """The world built once for a module, inside a transaction rolled back at
    the end of it. The module's tests must use the database (``django_db``):
    each runs in a savepoint rolled back after it, so none sees another's
    writes."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import RequestFactory

from reviews.demo import (
    DEMO_PASSWORD,
    DEMO_SYSTEMS,
    DEMO_USERS,
    chat_cases,
    claim_cases,
)
from reviews.management.commands.load_policy import policy_read
from reviews.models import Case, Policy, Queue, ReviewTask, Subject
from reviews.routing import policy_validate
from reviews.selectors import policy_active
from workbench.models import AISystem, APIKey, Role, TrailEvent, User
from workbench.services import api_key_authenticate, trail_verify

# django-axes wants the request that a login comes with.
LOGIN_REQUEST = RequestFactory().post("/accounts/login/")


def load_demo(cases: int = 40) -> str:
    out = StringIO()
    call_command("load_demo", "--cases", str(cases), stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    models = [AISystem, APIKey, Policy, Queue, User, Subject, Case, ReviewTask, TrailEvent]
    return {model.__name__: model.objects.count() for model in models}


def test_load_demo_loads_systems_policies_users_and_routed_cases(db):
    output = load_demo(40)

    systems = {s.slug: s for s in AISystem.objects.all()}
    assert set(systems) == {"claims-ai", "support-bot"}
    assert systems["claims-ai"].kind == "claim_decision"
    assert systems["support-bot"].kind == "chatbot_answer"
    assert all(s.callback_url == "" for s in systems.values())
    for system in systems.values():
        assert policy_active(system=system).version == 1
        by_status = {
            status: system.cases.filter(status=status).count()
            for status in (Case.Status.PENDING_REVIEW, Case.Status.FINALIZED)
        }
        assert by_status[Case.Status.PENDING_REVIEW] > 0, system.slug
        assert by_status[Case.Status.FINALIZED] > 0, system.slug
        assert system.cases.count() == 20
    waiting = [Case.Status.PENDING_REVIEW, Case.Status.UNDER_APPEAL]
    assert Case.objects.filter(status__in=waiting).count() == (
        ReviewTask.objects.filter(status=ReviewTask.Status.OPEN).count()
    )
    # Each system has its own queues; the chatbot's policy names no
    # supervisors' queue, so it was given one.
    assert set(Queue.objects.values_list("system__slug", "slug")) == {
        ("claims-ai", "claims-review"),
        ("claims-ai", "senior-review"),
        ("claims-ai", "appeals"),
        ("claims-ai", "supervisor"),
        ("support-bot", "chat-escalations"),
        ("support-bot", "chat-appeals"),
        ("support-bot", "supervisors"),
    }

    for role in Role.values:
        assert Group.objects.get(name=role).user_set.exists(), role
    assert User.objects.get(username="rev.alice").manager.username == "sup.sam"
    assert authenticate(LOGIN_REQUEST, username="rev.bob", password=DEMO_PASSWORD) is not None

    for slug in systems:
        match = re.search(rf"^{slug} ingest key: (wb_\S+)$", output, re.MULTILINE)
        assert match, output
        assert api_key_authenticate(plaintext=match[1], scope="ingest").system.slug == slug
    assert DEMO_PASSWORD in output

    assert trail_verify().ok
    assert TrailEvent.objects.filter(action="case.routed").count() == 40


def test_the_demo_policies_are_valid_and_every_queue_has_a_use():
    for spec in DEMO_SYSTEMS:
        document = policy_validate(
            policy_read(spec.policy_file), existing_queues={}, roles=set(Role.values)
        )
        assert document["system"] == spec.slug
        used = {rule["queue"] for rule in document["rules"]} | {
            document["default_queue"],
            document["appeal_queue"],
            document["escalation_queue"],
        }
        for queue in document["queues"]:
            assert queue["slug"] in used, queue["slug"]


def test_running_load_demo_twice_changes_nothing(db):
    load_demo(40)
    before = snapshot()

    output = load_demo(40)

    assert "demo data already loaded" in output
    assert snapshot() == before
    assert trail_verify().ok


def test_an_existing_user_is_left_alone(db):
    call_command("create_user", "admin", "--role", "admin", "--password", "mine", stdout=StringIO())

    output = load_demo(4)

    assert "exists already" in output
    assert authenticate(LOGIN_REQUEST, username="admin", password="mine") is not None
    assert User.objects.filter(username__in=[u.username for u in DEMO_USERS]).count() == len(
        DEMO_USERS
    )


def test_the_demo_cases_are_reproducible_and_varied():
    claims, chats = claim_cases(60), chat_cases(60)

    assert [c.model_dump() for c in claims] == [c.model_dump() for c in claim_cases(60)]
    assert [c.model_dump() for c in chats] == [c.model_dump() for c in chat_cases(60)]
    assert {c.output.outcome for c in claims} == {"approve", "deny", "partial"}
    assert any(c.metadata["amount"] > 5000 for c in claims)
    assert any(c.metadata["amount"] < 500 for c in claims)
    assert all(0.5 <= c.confidence <= 0.99 for c in claims)
    assert any(c.subject.email for c in claims)
    for claim in claims:
        for reason in claim.output.reasons:
            group, code = reason.code.split("-")
            assert group in {"CO", "CR", "OA", "PI", "PR"}
            assert code.isdigit() and int(code) <= 239
    answered = [c for c in chats if c.output.outcome == "answered"]
    assert len(answered) > len(chats) / 2
    assert len({c.external_id for c in chats}) == 60


@pytest.mark.parametrize("cases", [0, 1, 3])
def test_load_demo_with_very_few_cases(db, cases):
    load_demo(cases)

    assert Case.objects.count() == cases
    assert trail_verify().ok

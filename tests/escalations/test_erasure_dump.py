"""Erasure, as an auditor checks it (DESIGN §7, issue 13 item 1): distinctive
strings go in through every input that carries what the customer wrote or who
they are; after ``erase_subject`` a dump of the whole database (``pg_dump`` on
PostgreSQL, the raw bytes of the SQLite database on the embedded default), the
cache, the evidence storage and the logs hold none of them. What the AI
system wrote and the pseudonymous reference stay; the pages say the data was
erased; the trail still verifies."""

import json
import re
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from escalations.models import Appeal
from reviews.models import Case, Feedback, SubjectText
from reviews.routing import qa_sampled
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.notices import notice_token
from tests import factories
from tests.factories import client_for
from workbench.models import OutboxMessage, TrailEvent
from workbench.services import trail_verify
from workbench.services.outbox import outbox_deliver

pytestmark = pytest.mark.django_db(transaction=True)

REFERENCE = "MBR-QX-7731"  # the pseudonymous reference: it stays
# What the customer wrote or who they are, one distinctive word each.
CUSTOMER = {
    "name": "Quillonvex",
    "email": "quillon.vexmarrow@example.org",
    "first turn": "Zephyrinequay",
    "second turn": "Marlowquistery",
    "batch turn": "Brindlewickton",
    "generic turn": "Thornburyvale",
    "contest reason": "Ossianwrexley",
    "statement": "Pellucidorne",
    "evidence content": "Larkspurnacle",
    "evidence name": "larkspurquine",
    "feedback comment": "Vexillumbright",
    "feedback via the system": "Grimthornelle",
    # A transcript in the chat-completions format (issue 17 item 2): the user's
    # turns, a content part, and the name a user message may carry.
    "messages turn": "Quorvinthale",
    "messages part": "Fennimoraxe",
    "messages name": "Zeldarionne",
}
# What the AI system (or the organisation's agent) wrote: it stays.
AI_WROTE = {
    "assistant turn": "Saffronelle",
    "agent turn": "Umberwickle",
    "answer": "Cobaltmirey",
    "system prompt": "Orrindalewick",
    "tool output": "Caskelmirthe",
    "reference": REFERENCE,
}


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses the recipient, naming them in its error."""

    def send_messages(self, email_messages):
        raise OSError(f"550 mailbox unavailable: {email_messages[0].to[0]}")


def pdf(text: str) -> bytes:
    return f"%PDF-1.4\n1 0 obj<</Note ({text})>>endobj\ntrailer<<>>\n%%EOF\n".encode()


def subject(**extra) -> dict:
    return {
        "reference": REFERENCE,
        "name": f"{CUSTOMER['name']} Ruiz",
        "email": CUSTOMER["email"],
        "locale": "es",
        **extra,
    }


def claim_not_sampled(start: int) -> int:
    """A claim number whose approval the QA sample leaves to the AI."""
    n = start
    while qa_sampled(system="claims-ai", external_id=f"CLM-2026-{n:06d}", rate=0.05):
        n += 1
    return n


def decide(user) -> Case:
    task = task_claim_next(user=user)
    decision_record(
        task_id=task.pk,
        user=user,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key=uuid.uuid4().hex,
    )
    return Case.objects.get(pk=task.case_id)


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return re.sub(r"\s+", " ", response.content.decode())


def database_bytes() -> bytes:
    """The whole database as an auditor would copy it."""
    if connection.vendor == "postgresql":
        db = settings.DATABASES["default"]
        argv = ["pg_dump", "-h", db["HOST"], "-p", str(db["PORT"] or 5432), "-U", db["USER"]]
        return subprocess.run([*argv, db["NAME"]], capture_output=True, check=True).stdout
    # SQLite: the database file's pages as they are, free pages included
    # (the in-memory test database serialized, as a file copy would be).
    connection.ensure_connection()
    return connection.connection.serialize()


def cache_bytes() -> bytes:
    """Every value in the cache (this run's keys only, on Redis)."""
    backend = cache._cache if hasattr(cache, "_cache") else None
    if isinstance(backend, dict):  # the local-memory cache: pickled values
        return b"".join(backend.values())
    client = cache._cache.get_client(write=False)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    values = []
    for key in client.scan_iter(match=f"{prefix}*"):
        value = client.get(key)
        values.append(key + b"=" + (value if isinstance(value, bytes) else b""))
    return b"".join(values)


def found_in(blob: bytes, words: dict[str, str]) -> list[str]:
    """The names of ``words`` in ``blob``: as text, or as the hex a dump
    writes a binary column in."""
    lower = blob.lower()
    return [
        name
        for name, word in words.items()
        if word.lower().encode() in lower or word.encode().hex().encode() in lower
    ]


def test_after_erasure_no_table_page_cache_or_log_holds_what_the_customer_wrote(
    receiver, settings, caplog, alice, carol
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    claims = factories.system_with_policy()
    claims.callback_url = receiver.url  # webhooks too: their rows are in the dump
    claims.save(update_fields=["callback_url"])
    chats = factories.system_with_policy(factories.SUPPORT_POLICY)
    claims_api, chats_api = factories.api_client(claims), factories.api_client(chats)

    def post(api, path, body):
        response = api.post(path, body, content_type="application/json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    # 1. A claim denial a person decides; the customer appeals it, with a
    # statement and a file, and an appeal reviewer upholds it.
    post(claims_api, "/api/v1/cases", factories.claim_payload(1, subject=subject()))
    denied = decide(alice)
    for message in OutboxMessage.objects.filter(channel="email", status="pending"):
        outbox_deliver(message_id=message.pk)  # delivered (the services run has no worker)
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"  # from now on mail bounces
    notice = f"/notice/{notice_token(denied.reference)}/"
    customer = Client()
    form = customer.get(notice).content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', form)[1]
    filed = customer.post(
        notice,
        {
            "statement": f"{CUSTOMER['statement']}: my doctor wrote a letter.",
            "idempotency_key": key,
            "evidence": [
                SimpleUploadedFile(
                    f"{CUSTOMER['evidence name']}.pdf", pdf(CUSTOMER["evidence content"])
                )
            ],
        },
    )
    assert filed.status_code == 302
    factories.appeal_decided(carol, reasons="The letter does not change the plan's rule.")
    # The customer answers the notice's two questions about the appeal's
    # decision, with a comment (issue 16).
    answered = customer.post(
        notice,
        {
            "form": "feedback",
            "listened": "2",
            "explained": "3",
            "comment": f"{CUSTOMER['feedback comment']} felt unheard.",
        },
    )
    assert answered.status_code == 302
    assert CUSTOMER["feedback comment"] in page(customer, notice)

    # 2. An approval the AI made alone, contested for the customer, then
    # decided by a person.
    n = claim_not_sampled(2)
    approved = factories.claim_payload(
        n, subject=subject(), output={"outcome": "approve"}, confidence=0.99
    )
    approved = post(claims_api, "/api/v1/cases", approved)
    assert approved["status"] == "finalized"
    reason = f"{CUSTOMER['contest reason']} says the amount is wrong"
    post(claims_api, f"/api/v1/cases/{approved['reference']}/contest", {"reason": reason})
    reviewer = client_for(alice)
    task_claim_next(user=alice)
    assert CUSTOMER["contest reason"] in page(reviewer, f"/cases/{approved['reference']}/")
    decision_record(
        task_id=Case.objects.get(reference=approved["reference"]).tasks.get(status="claimed").pk,
        user=alice,
        fencing_token=Case.objects.get(reference=approved["reference"])
        .tasks.get(status="claimed")
        .fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key=uuid.uuid4().hex,
    )

    # 3. Chats: one sent alone (the customer asks for a person: a person
    # decides), three in a batch (a chatbot answer, a generic case that
    # carries a conversation too, and a transcript in the chat-completions
    # format whose customer asks for a person), all about the same customer.
    conversation = [
        {"role": "customer", "text": f"{CUSTOMER['first turn']} never arrived."},
        {"role": "assistant", "text": f"{AI_WROTE['assistant turn']}: it is on its way."},
        {"role": "agent", "text": f"{AI_WROTE['agent turn']} from the team here."},
        {"role": "customer", "text": f"{CUSTOMER['second turn']}: I want a human."},
    ]
    alone = factories.chat_payload(
        1,
        subject=subject(),
        input={"conversation": conversation},
        output={"outcome": "answered", "answer": f"{AI_WROTE['answer']} is our answer."},
    )
    alone = post(chats_api, "/api/v1/cases", alone)
    assert alone["status"] == "pending_review"
    task_claim_next(user=alice)
    shown = page(reviewer, f"/cases/{alone['reference']}/")
    assert CUSTOMER["first turn"] in shown and CUSTOMER["second turn"] in shown
    decide_chat = Case.objects.get(reference=alone["reference"]).tasks.get(status="claimed")
    decision_record(
        task_id=decide_chat.pk,
        user=alice,
        fencing_token=decide_chat.fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key=uuid.uuid4().hex,
    )
    batch = [
        factories.chat_payload(
            2, text=f"Thanks, {CUSTOMER['batch turn']} works great now.", subject=subject()
        ),
        {
            **factories.chat_payload(3, subject=subject()),
            "kind": "generic",
            "input": {
                "conversation": [
                    {"role": "customer", "text": f"{CUSTOMER['generic turn']} is lovely."}
                ],
                "channel": "web",
            },
        },
        factories.chat_payload(
            4,
            subject=subject(),
            input={
                "messages": [
                    {"role": "system", "content": f"{AI_WROTE['system prompt']}: be kind."},
                    {
                        "role": "user",
                        "name": CUSTOMER["messages name"],
                        "content": f"{CUSTOMER['messages turn']} was charged twice.",
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c1", "function": {"name": "charges_list"}}],
                    },
                    {
                        "role": "tool",
                        "tool_call_id": "c1",
                        "content": f"{AI_WROTE['tool output']}: two charges",
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": f"{CUSTOMER['messages part']}, see"},
                            {"type": "image_url", "image_url": {"url": "https://x/receipt.png"}},
                            {"type": "text", "text": "I want a human."},
                        ],
                    },
                ]
            },
        ),
    ]
    results = post(chats_api, "/api/v1/cases/batch", {"cases": batch})["results"]
    assert [item["status"] for item in results] == [201, 201, 201]
    assert results[2]["case_status"] == "pending_review"
    shown = page(reviewer, f"/cases/{results[2]['reference']}/")
    assert CUSTOMER["messages turn"] in shown and CUSTOMER["messages part"] in shown
    assert decide(alice).reference == results[2]["reference"]
    assert CUSTOMER["first turn"] in page(Client(), f"/notice/{notice_token(alone['reference'])}/")
    # The chat system relays the customer's rating of the person's answer.
    rating = {"listened": 5, "explained": 4, "comment": f"{CUSTOMER['feedback via the system']}!"}
    post(chats_api, f"/api/v1/cases/{alone['reference']}/feedback", rating)

    # Emails still pending (the services run has no worker) bounce, naming
    # the address in their delivery error.
    for message in OutboxMessage.objects.filter(channel="email", status="pending"):
        outbox_deliver(message_id=message.pk)
    assert OutboxMessage.objects.filter(last_error__contains=CUSTOMER["email"]).exists()

    # Before erasure: what the customer wrote is sealed at rest; only the
    # copies made for sending, and the evidence file's name, are plain.
    before = found_in(database_bytes(), CUSTOMER)
    assert set(before) <= {"email", "evidence name"}, before
    assert SubjectText.objects.filter(subject__reference=REFERENCE).count() == 7

    # Erasure, once no appeal window is open any more.
    cases = list(Case.objects.filter(subject__reference=REFERENCE))
    later = max(case.finalized_at or timezone.now() for case in cases)
    with time_machine.travel(later + timedelta(days=185)):
        call_command("erase_subject", REFERENCE, "--system", "claims-ai")
        call_command("erase_subject", REFERENCE, "--system", "support-bot")
        assert trail_verify().ok

        # The pages say the data was erased and show nothing of it.
        reviewer = client_for(alice)  # the session of six months ago has expired
        shown = {}
        for case in cases:
            notice = page(Client(), f"/notice/{notice_token(case.reference)}/")
            assert "se borraron el" in notice, case.reference  # the customer reads Spanish
            shown[f"notice {case.reference}"] = notice
            if not case.tasks.exists():
                continue  # the AI decided it alone: no staff page shows it
            staff = page(reviewer, f"/cases/{case.reference}/")
            assert "personal data was erased" in staff, case.reference
            shown[f"case page {case.reference}"] = staff
        appeal_page = page(client_for(carol), f"/appeals/{denied.reference}/")
        assert "erased" in appeal_page
        shown["appeal page"] = appeal_page
        for where, html in shown.items():
            assert found_in(html.encode(), CUSTOMER) == [], where
        assert AI_WROTE["assistant turn"] in shown[f"case page {alone['reference']}"]

    # The dump, the cache, the evidence storage and the logs hold none of it.
    dump = database_bytes()
    assert found_in(dump, CUSTOMER) == []
    assert found_in(dump, AI_WROTE) == list(AI_WROTE)
    assert found_in(cache_bytes(), CUSTOMER) == []
    stored = b"".join(path.read_bytes() for path in Path(settings.EVIDENCE_ROOT).rglob("*"))
    assert found_in(stored, CUSTOMER) == []
    assert not Appeal.objects.get().evidence.exclude(stored_as="").exists()
    assert found_in(caplog.text.encode(), CUSTOMER) == []
    # The emails are emptied, and the erasure is one event with its counts.
    assert set(
        OutboxMessage.objects.filter(channel="email").values_list("destination", flat=True)
    ) == {""}
    erased = [
        json.loads(body)["data"]
        for body in TrailEvent.objects.filter(action="subject.erased").values_list(
            "body", flat=True
        )
    ]
    assert sorted((data["texts"], data["appeals"]) for data in erased) == [(2, 1), (5, 0)]
    # The answers' scores stay (no personal data in them); their words are gone.
    assert sorted(Feedback.objects.values_list("listened", "explained")) == [(2, 3), (5, 4)]
    assert not SubjectText.objects.filter(kind="feedback", sealed__isnull=False).exists()

"""What the customer wrote is sealed with their key (DESIGN §7): their chat
turns leave the case's input at intake (routing has read them), a contest
reason is kept for the reviewer, and each sealed value opens only as itself."""

import hashlib
import json

import pytest
from cryptography.exceptions import InvalidTag
from django.test import Client

from reviews.models import Case, Subject, SubjectText
from reviews.selectors import case_contests, case_input_opened
from reviews.services.assignment import task_claim_next
from reviews.services.subjects import (
    SubjectErased,
    subject_key_ensure,
    subject_text_open,
    subject_text_seal,
)
from tests import factories
from tests.factories import client_for
from workbench.models import TrailEvent

CONVERSATION = [
    {"role": "customer", "text": "My parcel never came."},
    {"role": "assistant", "text": "I am sorry to hear that."},
    {"role": "agent", "text": "An agent here, looking now."},
    {"role": "customer", "text": "It is order 4711. I want a human!"},
]


def chat(chat_system, n=1, conversation=None, kind="chatbot_answer"):
    payload = factories.chat_payload(n, input={"conversation": conversation or CONVERSATION})
    payload["kind"] = kind
    payload["subject"] = {"reference": "CUS-1"}
    return factories.ingest(chat_system, payload)


def test_the_customers_turns_leave_the_input_and_are_sealed_after_routing(chat_system):
    case = chat(chat_system)
    # Routing read the latest customer turn ("human") before it was sealed.
    assert case.status == Case.Status.PENDING_REVIEW
    assert case.route["rule"] == "distressed-customer"
    stored = Case.objects.get(pk=case.pk).input["conversation"]
    assert stored == [
        {"role": "customer"},
        CONVERSATION[1],
        CONVERSATION[2],
        {"role": "customer"},
    ]
    row = SubjectText.objects.get(case=case)
    assert row.kind == "conversation" and row.subject == case.subject
    assert b"parcel" not in bytes(row.sealed) and b"4711" not in bytes(row.sealed)
    assert subject_text_open(row) == {"0": CONVERSATION[0]["text"], "3": CONVERSATION[3]["text"]}
    assert case_input_opened(case=Case.objects.get(pk=case.pk))["conversation"] == CONVERSATION
    # The trail holds neither the words nor their digest beside the body's.
    for body in TrailEvent.objects.filter(case=case.reference).values_list("body", flat=True):
        assert "parcel" not in body and "4711" not in body


def test_a_generic_case_that_carries_a_conversation_is_sealed_the_same_way(chat_system):
    case = chat(chat_system, 2, kind="generic")
    assert Case.objects.get(pk=case.pk).input["conversation"][0] == {"role": "customer"}
    assert case_input_opened(case=case)["conversation"] == CONVERSATION


def test_the_same_conversation_again_is_the_same_case_not_a_conflict(chat_system):
    first = chat(chat_system)
    payload = factories.chat_payload(1, input={"conversation": CONVERSATION})
    payload["subject"] = {"reference": "CUS-1"}
    response = factories.api_client(chat_system).post(
        "/api/v1/cases", payload, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["reference"] == first.reference
    assert SubjectText.objects.count() == 1


def test_the_reviewer_and_the_notice_read_the_turns_escaped_and_isolated(chat_system, alice):
    turn = "\u202egnp.exe <script>alert(1)</script>"
    case = chat(chat_system, conversation=[{"role": "customer", "text": f"agent please {turn}"}])
    task_claim_next(user=alice)
    page = client_for(alice).get(f"/cases/{case.reference}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    # An override character cannot turn the page around it: the turn is an isolate.
    assert '<p dir="auto"><bdi>agent please \u202egnp.exe' in page
    from reviews.services.notices import notice_token

    notice = Client().get(f"/notice/{notice_token(case.reference)}/").content.decode()
    assert "agent please \u202egnp.exe &lt;script&gt;" in notice


def test_a_sealed_value_opens_only_as_itself(chat_system):
    one, two = chat(chat_system, 1), chat(chat_system, 2)
    first = SubjectText.objects.get(case=one)
    second = SubjectText.objects.get(case=two)
    # Another row's sealed bytes (same subject key) do not open as this row's.
    first.sealed = second.sealed
    with pytest.raises(InvalidTag):
        subject_text_open(first)


def test_a_contest_reason_is_sealed_for_the_reviewer_and_only_its_digest_is_in_the_trail(
    system, alice
):
    case = factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    api = factories.api_client(system)
    reason = "The member says the visit was pre-authorised on 3 May."
    response = api.post(
        f"/api/v1/cases/{case.reference}/contest", {"reason": reason}, "application/json"
    )
    assert response.status_code == 200
    (row,) = SubjectText.objects.filter(case=case, kind="contest")
    assert (
        subject_text_open(row) == reason
        and row.sha256 == hashlib.sha256(reason.encode()).hexdigest()
    )
    event = json.loads(TrailEvent.objects.get(action="case.contested").body)
    assert event["data"]["reason_sha256"] == row.sha256 and reason not in json.dumps(event)
    assert [contest.reason for contest in case_contests(case=case)] == [reason]
    task_claim_next(user=alice)
    page = client_for(alice).get(f"/cases/{case.reference}/").content.decode()
    assert "Why it was contested" in page and "pre-authorised on 3 May" in page


def test_a_key_made_meanwhile_by_another_writer_is_kept_not_replaced(chat_system):
    case = chat(chat_system)
    Subject.objects.filter(pk=case.subject_id).update(key=None)
    subject = Subject.objects.get(pk=case.subject_id)
    stale = Subject.objects.get(pk=subject.pk)
    subject_key_ensure(subject)  # the first writer
    stale.key = None  # the second read the row before that
    subject_key_ensure(stale)
    assert bytes(stale.key) == bytes(subject.key) == bytes(Subject.objects.get(pk=subject.pk).key)


def test_an_erased_subject_gets_no_key_and_keeps_no_words(chat_system):
    case = chat(chat_system)
    Subject.objects.filter(pk=case.subject_id).update(
        key=None, contact=None, erased_at="2026-01-01T00:00Z"
    )
    subject = Subject.objects.get(pk=case.subject_id)
    with pytest.raises(SubjectErased):
        subject_key_ensure(subject)
    later = chat(chat_system, 2)  # a new case about the erased subject: stored, words not kept
    assert later.subject_id == subject.pk
    assert not SubjectText.objects.filter(case=later).exists()
    assert case_input_opened(case=Case.objects.get(pk=later.pk))["conversation"][0] == {
        "role": "customer",
        "erased": True,
    }
    with pytest.raises(ValueError, match="no key"):
        subject_text_seal(subject=subject, kind="feedback", value="Thanks!")

"""Erasure (DESIGN §7): the subject's key is destroyed when nothing needs the
data any more; the trail still verifies."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from escalations.models import Appeal, Evidence
from escalations.services import (
    ErasureRefused,
    appeal_file,
    appeal_statement,
    legal_hold_lift,
    legal_hold_place,
    subject_erase,
)
from reviews.models import Subject
from reviews.services.subjects import contact_open
from tests import factories
from tests.factories import decided_case
from workbench.models import TrailEvent
from workbench.services import Actor, trail_verify

ACTOR = Actor.workbench("tests")
PDF = b"%PDF-1.4\n%%EOF\n"


def appealed_and_decided(system, alice):
    case = decided_case(system, alice)
    appeal_file(
        case=case,
        statement="My doctor's letter.",
        evidence=[SimpleUploadedFile("letter.pdf", PDF)],
        idempotency_key=uuid.uuid4().hex,
    )
    carol = factories.UserFactory(username="appeal.carol", role="appeal_reviewer")
    factories.appeal_decided(carol, reasons="The denial stands.")
    case.refresh_from_db()
    return case


def test_erasure_is_refused_while_the_appeal_window_is_open(system, alice):
    case = decided_case(system, alice)
    with pytest.raises(ErasureRefused) as refused:
        subject_erase(reference=case.subject.reference, by=ACTOR)
    assert refused.value.code == "appeal_window_open"
    closes = case.finalized_at + timedelta(days=184)
    assert f"{closes:%d %B %Y}" in refused.value.message
    assert contact_open(Subject.objects.get()) is not None


def test_erasure_is_refused_while_a_case_is_being_decided(system):
    case = factories.ingest(system, factories.claim_payload(1))
    with pytest.raises(ErasureRefused) as refused:
        subject_erase(reference=case.subject.reference, by=ACTOR)
    assert refused.value.code == "case_open"


def test_a_legal_hold_stops_erasure_until_lifted(system, alice):
    case = appealed_and_decided(system, alice)  # one appeal allowed: nothing left open
    reference = case.subject.reference
    legal_hold_place(reference=reference, reason="litigation 2026-117", by=ACTOR)
    with pytest.raises(ErasureRefused) as refused:
        subject_erase(reference=reference, by=ACTOR)
    assert refused.value.code == "legal_hold" and "litigation 2026-117" in refused.value.message
    legal_hold_lift(reference=reference, by=ACTOR)
    assert not subject_erase(reference=reference, by=ACTOR).already


def test_erasure_destroys_the_key_the_statement_and_the_files_and_the_trail_verifies(
    system, alice, django_capture_on_commit_callbacks
):
    case = appealed_and_decided(system, alice)
    evidence = Evidence.objects.get()
    stored_as = evidence.stored_as
    assert storages["evidence"].exists(stored_as)

    with django_capture_on_commit_callbacks(execute=True):  # the files go after the commit
        erased = subject_erase(reference=case.subject.reference, by=ACTOR)

    assert (erased.cases, erased.appeals, erased.files) == (1, 1, 1)
    subject = Subject.objects.get()
    assert subject.key is None and subject.contact is None and subject.erased_at
    assert contact_open(subject) is None
    appeal = Appeal.objects.get()
    assert appeal.statement is None and appeal_statement(appeal) is None
    assert not storages["evidence"].exists(stored_as)
    event = json.loads(TrailEvent.objects.get(action="subject.erased").body)
    assert event["data"]["subject"] == case.subject.reference
    assert trail_verify().ok
    # Twice is harmless.
    assert subject_erase(reference=case.subject.reference, by=ACTOR).already


def test_erasure_after_the_window_closed_without_appeal(system, alice):
    case = decided_case(system, alice)
    with time_machine.travel(case.finalized_at + timedelta(days=184, minutes=1)):
        subject_erase(reference=case.subject.reference, by=ACTOR)
    assert Subject.objects.get().erased_at is not None


def test_the_erase_subject_command_refuses_with_the_reason_and_exits_non_zero(system, alice):
    case = decided_case(system, alice)
    with pytest.raises(CommandError, match="can be appealed until"):
        call_command("erase_subject", case.subject.reference)
    with pytest.raises(CommandError, match="no subject"):
        call_command("erase_subject", "NOBODY")
    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        call_command("erase_subject", case.subject.reference)
    assert Subject.objects.get().erased_at is not None


def test_the_legal_hold_command_places_and_lifts(system, alice, capsys):
    case = decided_case(system, alice)
    call_command("legal_hold", case.subject.reference, "--reason", "regulator request")
    with pytest.raises(CommandError, match="already on hold"):
        call_command("legal_hold", case.subject.reference, "--reason", "again")
    call_command("legal_hold", case.subject.reference, "--lift")
    actions = list(
        TrailEvent.objects.filter(action__startswith="subject.").values_list("action", flat=True)
    )
    assert actions == ["subject.hold_placed", "subject.hold_lifted"]


def test_erasure_clears_the_customers_turns_of_a_case_stored_before_they_were_sealed(
    chat_system,
):
    from reviews.models import Case, SubjectText
    from reviews.selectors import case_input_opened

    case = factories.ingest(chat_system, factories.chat_payload(1, text="Where is my order?"))
    assert case.status == "finalized"
    # As an older version stored it: the words in the input, nothing sealed.
    SubjectText.objects.filter(case=case).delete()
    legacy = [{"role": "customer", "text": "Legacy words"}, {"role": "assistant", "text": "Hi"}]
    Case.objects.filter(pk=case.pk).update(input={"conversation": legacy})
    assert case_input_opened(case=Case.objects.get(pk=case.pk))["conversation"] == legacy

    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        subject_erase(reference=case.subject.reference, by=ACTOR)

    case = Case.objects.get(pk=case.pk)
    assert case.input == {"conversation": [{"role": "customer"}, legacy[1]]}
    opened = case_input_opened(case=case)["conversation"]
    assert opened == [{"role": "customer", "erased": True}, legacy[1]]


def test_erasure_empties_the_customers_emails_and_stops_those_not_sent(system, alice, settings):
    from workbench.models import DeliveryAttempt, OutboxMessage

    settings.EMAIL_BACKEND = "tests.escalations.test_erasure_dump.RefusingBackend"
    case = decided_case(system, alice)  # a person decided: the customer is told
    email = OutboxMessage.objects.get(channel="email")
    assert email.topic == "case.decided" and email.destination == "ana@example.org"
    from workbench.services.outbox import outbox_deliver

    outbox_deliver(message_id=email.pk)  # bounces, naming the address
    assert "ana@example.org" in DeliveryAttempt.objects.get(message=email).error
    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        erased = subject_erase(reference=case.subject.reference, by=ACTOR)

    assert erased.emails == 1
    email.refresh_from_db()
    assert (email.destination, email.payload, email.status) == ("", {"erased": True}, "failed")
    assert "ana@example.org" not in email.last_error
    assert "ana@example.org" not in DeliveryAttempt.objects.get(message=email).error

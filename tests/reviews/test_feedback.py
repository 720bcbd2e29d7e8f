"""The customer is asked (issue 16): ``feedback_record``, ``notice_open`` and
``feedback_invite``. Every refusal has its code and stores nothing."""

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
import time_machine

from escalations.services import appeal_file, subject_erase
from reviews.models import Case, Feedback, FeedbackInvitation, SubjectText
from reviews.routing import policy_validate
from reviews.services import FeedbackInvalid, FeedbackRefused, feedback_record
from reviews.services.notices import notice_open
from reviews.services.subjects import subject_text_open
from tests import factories
from tests.factories import decided_case
from workbench.models import OutboxMessage, Role, TrailEvent
from workbench.services import Actor, trail_verify


def events(action: str = "case.feedback") -> list[dict]:
    return [
        json.loads(body)
        for body in TrailEvent.objects.filter(action=action)
        .order_by("pk")
        .values_list("body", flat=True)
    ]


def answer(case, listened=4, explained=5, comment=None, **kwargs):
    kwargs.setdefault("source", Feedback.Source.NOTICE)
    kwargs.setdefault("actor", Actor.customer(case.subject.reference))
    return feedback_record(
        case=case, listened=listened, explained=explained, comment=comment, **kwargs
    )


def nothing_stored():
    assert not Feedback.objects.exists()
    assert not SubjectText.objects.filter(kind=SubjectText.Kind.FEEDBACK).exists()
    assert events() == []


# --- Recording ------------------------------------------------------------------------------


def test_an_answer_is_stored_with_its_comment_sealed_and_one_event_of_scores_and_digest(
    system, alice
):
    case = decided_case(system, alice)
    comment = "The letter was clear, thank you."

    recorded = answer(case, 4, 5, comment)

    feedback = Feedback.objects.get()
    assert recorded.created and not recorded.changed
    assert (feedback.listened, feedback.explained, feedback.stage) == (4, 5, "decision")
    assert (feedback.decided_by, feedback.source, feedback.channel) == ("human", "notice", "")
    assert feedback.answered_at is not None and feedback.changed_at is None
    text = feedback.comment
    assert text.kind == SubjectText.Kind.FEEDBACK and text.case_id == case.pk
    assert comment.encode() not in bytes(text.sealed)
    assert subject_text_open(text) == comment
    digest = hashlib.sha256(comment.encode()).hexdigest()
    [event] = events()
    assert event["actor"] == {"type": "customer", "id": case.subject.reference}
    assert (event["case"], event["system"]) == (case.reference, "claims-ai")
    assert event["data"] == {
        "listened": 4,
        "explained": 5,
        "source": "notice",
        "comment_sha256": digest,
        "decided_by": "human",
        "stage": "decision",
        "changed": False,
    }
    assert comment not in TrailEvent.objects.get(action="case.feedback").body
    assert trail_verify().ok


def test_an_ai_decision_is_rated_as_the_ais_and_without_a_comment_the_digest_is_null(system):
    case = factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    case = Case.objects.get(pk=case.pk)
    assert case.status == "finalized" and case.decided_by == "ai"

    answer(case, 2, 1, "   ")

    [event] = events()
    assert event["data"]["decided_by"] == "ai"
    assert event["data"]["comment_sha256"] is None
    assert Feedback.objects.get().comment is None


def test_the_system_rates_with_its_channel_and_its_own_actor(system, alice):
    case = decided_case(system, alice)

    answer(case, 3, 3, source="system", channel="ivr-survey", actor=Actor.system("claims-ai"))

    [event] = events()
    assert event["actor"] == {"type": "system", "id": "claims-ai"}
    assert event["data"]["source"] == "system" and event["data"]["channel"] == "ivr-survey"
    assert Feedback.objects.get().channel == "ivr-survey"


def test_an_appeal_decision_is_rated_apart_from_the_first_decision(system, alice, carol):
    case = decided_case(system, alice)
    answer(case, 1, 2)
    case = appeal_decided_from(case, carol)

    answer(case, 5, 4)

    rows = dict(Feedback.objects.values_list("stage", "listened"))
    assert rows == {"decision": 1, "appeal": 5}
    assert [e["data"]["stage"] for e in events()] == ["decision", "appeal"]
    assert events()[-1]["data"]["decided_by"] == "human"
    assert events()[-1]["data"]["changed"] is False


def appeal_decided_from(case, carol) -> Case:
    appeal_file(
        case=case, statement="Please look again.", evidence=[], idempotency_key=uuid.uuid4().hex
    )
    factories.appeal_decided(carol, reasons="The plan's rule applies.")
    return Case.objects.select_related("subject", "system").get(pk=case.pk)


# --- Changing the answer --------------------------------------------------------------------


def test_a_change_within_14_days_updates_the_row_and_writes_a_second_event(system, alice):
    case = decided_case(system, alice)
    answer(case, 2, 2, "First thoughts.")
    first_text = Feedback.objects.get().comment_id

    with time_machine.travel(timedelta(days=13, hours=23)):
        recorded = answer(case, 4, 3, "On reflection, fair.")

    assert recorded.changed and not recorded.created
    feedback = Feedback.objects.get()
    assert (feedback.listened, feedback.explained) == (4, 3)
    assert feedback.changed_at > feedback.answered_at
    assert subject_text_open(feedback.comment) == "On reflection, fair."
    # The replaced words are not kept; the trail keeps the digests of both.
    assert not SubjectText.objects.filter(pk=first_text).exists()
    first, second = events()
    assert first["data"]["changed"] is False and second["data"]["changed"] is True
    assert second["data"]["listened"] == 4
    assert first["data"]["comment_sha256"] != second["data"]["comment_sha256"]


def test_the_same_answer_again_changes_nothing(system, alice):
    case = decided_case(system, alice)
    answer(case, 3, 4, "Same words.")

    recorded = answer(case, 3, 4, "Same words.")

    assert not recorded.changed and not recorded.created
    assert len(events()) == 1
    assert SubjectText.objects.filter(kind="feedback").count() == 1


def test_a_change_after_14_days_is_refused_and_nothing_changes(system, alice, settings):
    case = decided_case(system, alice)
    answer(case, 2, 2)
    before = Feedback.objects.values().get()

    with time_machine.travel(timedelta(days=14, minutes=1)), pytest.raises(FeedbackRefused) as e:
        answer(case, 5, 5, "Changed my mind.")

    assert e.value.code == "too_late" and e.value.status == 409
    assert Feedback.objects.values().get() == before
    assert len(events()) == 1
    assert not SubjectText.objects.filter(kind="feedback").exists()
    # The window is a setting.
    settings.FEEDBACK_CHANGE_DAYS = 30
    with time_machine.travel(timedelta(days=14, minutes=1)):
        assert answer(case, 5, 5).changed


# --- Refusals: nothing stored ----------------------------------------------------------------


def test_a_case_not_final_is_refused(system):
    case = factories.ingest(system, factories.claim_payload(1))
    assert case.status == "pending_review"

    with pytest.raises(FeedbackRefused) as e:
        answer(case, 4, 4, "Too early.")

    assert e.value.code == "not_final"
    nothing_stored()


def test_a_case_under_appeal_is_not_final(system, alice):
    case = decided_case(system, alice)
    appeal_file(case=case, statement="Look again.", evidence=[], idempotency_key="k" * 32)

    with pytest.raises(FeedbackRefused) as e:
        answer(case, 4, 4)

    assert e.value.code == "not_final"
    nothing_stored()


@pytest.mark.parametrize(
    ("listened", "explained", "paths"),
    [
        (0, 3, ["listened"]),
        (3, 6, ["explained"]),
        (-1, 99, ["listened", "explained"]),
        ("5", 3, ["listened"]),
        (True, 3, ["listened"]),
        (None, 3, ["listened"]),
        (4.0, 3, ["listened"]),
    ],
)
def test_a_score_outside_1_to_5_is_refused(system, alice, listened, explained, paths):
    case = decided_case(system, alice)

    with pytest.raises(FeedbackInvalid) as e:
        answer(case, listened, explained, "Fine.")

    assert e.value.code == "score_out_of_range" and e.value.status == 422
    assert [field["path"] for field in e.value.fields] == paths
    nothing_stored()


@pytest.mark.parametrize(
    ("comment", "code"),
    [
        ("x" * 2001, "comment_too_long"),
        ("y" * (1024 * 1024), "comment_too_long"),
        ("<b>thanks</b>", "comment_markup"),
        ("fine <script>alert(1)</script>", "comment_markup"),
        ('<a href="https://example.org">see</a>', "comment_markup"),
        ("ok <!-- hidden -->", "comment_markup"),
        ("<img src=x onerror=alert(1)>", "comment_markup"),
        ("</p>", "comment_markup"),
        ("nul \x00 here", "comment_markup"),
    ],
)
def test_a_long_comment_or_one_with_markup_is_refused_not_stripped(system, alice, comment, code):
    case = decided_case(system, alice)

    with pytest.raises(FeedbackInvalid) as e:
        answer(case, 4, 4, comment)

    assert e.value.code == code
    assert [field["path"] for field in e.value.fields] == ["comment"]
    nothing_stored()


def test_plain_text_with_angle_brackets_that_are_no_tag_is_kept(system, alice):
    case = decided_case(system, alice)

    answer(case, 4, 4, "3 < 5 and 5 > 3; a -> b")

    assert subject_text_open(Feedback.objects.get().comment) == "3 < 5 and 5 > 3; a -> b"


def test_a_bad_channel_is_refused(system, alice):
    case = decided_case(system, alice)

    with pytest.raises(FeedbackInvalid) as e:
        answer(case, 4, 4, source="system", channel="IVR Survey!", actor=Actor.system("claims-ai"))

    assert e.value.code == "bad_channel"
    nothing_stored()


def test_an_erased_subject_is_refused(system, alice):
    case = decided_case(system, alice)
    later = case.finalized_at + timedelta(days=185)
    with time_machine.travel(later):
        subject_erase(reference=case.subject.reference, by=Actor.workbench("tests"))
        case.subject.refresh_from_db()

        with pytest.raises(FeedbackRefused) as e:
            answer(case, 4, 4)

    assert e.value.code == "subject_erased"
    nothing_stored()


# --- The notice opened -------------------------------------------------------------------------


def test_the_first_open_is_recorded_once_however_often_it_is_opened(system, alice):
    case = decided_case(system, alice)

    opened = [notice_open(case=case) for _ in range(3)]

    assert opened == [True, False, False]
    [event] = events("notice.opened")
    assert event["actor"] == {"type": "customer", "id": case.subject.reference}
    assert event["data"] == {"adverse": True}
    assert Case.objects.get(pk=case.pk).notice_opened_at is not None


def test_an_approval_opened_is_not_adverse(system):
    case = factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    notice_open(case=Case.objects.get(pk=case.pk))

    assert events("notice.opened")[0]["data"] == {"adverse": False}


# --- The invitation -----------------------------------------------------------------------------


def invite_policy(**extra) -> dict:
    return {**factories.CLAIMS_POLICY, "feedback_invite": True, **extra}


def invitations() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(topic="feedback.invite"))


def test_a_policy_without_feedback_invite_still_loads_and_defaults_to_false():
    document = policy_validate(
        {"system": "claims-ai", "rules": [], "queues": [{"slug": "q", "name": "Q"}]},
        existing_queues={},
        roles=set(Role.values),
    )
    assert document["feedback_invite"] is False
    with pytest.raises(Exception, match="feedback_invite"):
        policy_validate(
            {**factories.CLAIMS_POLICY, "feedback_invite": "yes"},
            existing_queues={},
            roles=set(Role.values),
        )


def test_without_the_policy_key_no_invitation_is_sent(system, alice):
    decided_case(system, alice)

    assert invitations() == []


def test_a_final_decision_invites_the_customer_once_per_stage(db, alice, carol):
    system = factories.system_with_policy(invite_policy())
    case = decided_case(system, alice)

    [invite] = invitations()
    assert invite.destination == "ana@example.org"
    assert "/notice/" in invite.payload["body"] and case.reference in invite.payload["subject"]
    assert invite.payload["about"] == f"subject:{case.subject_id}"

    from reviews.services import feedback_invite

    assert feedback_invite(case=case) is False  # once per case and stage
    case = appeal_decided_from(case, carol)
    assert len(invitations()) == 2  # the appeal's decision is a new one to rate
    assert set(FeedbackInvitation.objects.values_list("stage", flat=True)) == {
        "decision",
        "appeal",
    }


def test_the_invitation_is_in_the_customers_language(db, alice):
    system = factories.system_with_policy(invite_policy())
    subject = {"reference": "MBR-1", "name": "Ana", "email": "ana@example.org", "locale": "es"}
    decided_case(system, alice, subject=subject)

    [invite] = invitations()
    assert "Dos preguntas" in invite.payload["subject"]


def test_no_address_no_invitation(db, alice):
    system = factories.system_with_policy(invite_policy())
    decided_case(system, alice, subject={"reference": "MBR-2"})

    assert invitations() == [] and not FeedbackInvitation.objects.exists()


def test_cases_the_ai_decided_at_intake_are_invited_by_intake(db):
    from reviews.services import feedback_invite_many

    system = factories.system_with_policy(invite_policy())
    approve = {"output": {"outcome": "approve"}, "confidence": 0.99, "metadata": {"amount": 10}}
    cases = [factories.ingest(system, factories.claim_payload(n, **approve)) for n in (1, 2)]
    cases.append(factories.ingest(system, factories.claim_payload(3)))  # to a person: not final
    final = [case for case in cases if case.status == "finalized"]
    assert final and len(final) < len(cases)

    assert {m.payload["about"] for m in invitations()} == {f"subject:{c.subject_id}" for c in final}
    assert feedback_invite_many(system=system, cases=cases) == 0  # once per case and stage
    assert len(invitations()) == len(final)


@pytest.mark.parametrize(("listened", "explained"), [(0, 3), (3, 6)])
def test_the_database_refuses_scores_outside_1_to_5(system, alice, listened, explained):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    case = decided_case(system, alice)
    row = Feedback(
        case=case,
        stage="decision",
        listened=listened,
        explained=explained,
        decided_by="human",
        source="notice",
        answered_at=timezone.now(),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def test_one_answer_row_per_case_and_stage_in_the_database(system, alice):
    from django.db import IntegrityError, transaction

    case = decided_case(system, alice)
    answer(case, 3, 3)
    twin = Feedback.objects.values().get()
    twin.pop("id")
    with pytest.raises(IntegrityError), transaction.atomic():
        Feedback.objects.create(**twin)

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from escalations.models import Appeal
from escalations.services import (
    AppealRefused,
    appeal_decide,
    appeal_file,
    appeal_statement,
    appeal_statement_open,
)
from reviews.models import Case, ReviewTask
from reviews.services.assignment import TaskError, task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.factories import decided_case
from workbench.errors import Invalid
from workbench.models import OutboxMessage, TrailEvent
from workbench.services import trail_verify

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def file(case, statement="The visit was necessary: my doctor's letter says so.", **kwargs):
    kwargs.setdefault("evidence", [])
    kwargs.setdefault("idempotency_key", uuid.uuid4().hex)
    return appeal_file(case=case, statement=statement, **kwargs)


def last_event(action):
    return json.loads(TrailEvent.objects.filter(action=action).latest("seq").body)


def open_and_decide(task, user, **fields):
    appeal_statement_open(task_id=task.pk, user=user, fencing_token=task.fencing_token)
    return decide(task, user, **fields)


def decide(task, user, **fields):
    fields.setdefault("reason_code", "")
    fields.setdefault("final_outcome", "")
    fields.setdefault("reasons", "Your doctor's letter shows the visit was needed.")
    return appeal_decide(
        task_id=task.pk,
        user=user,
        fencing_token=task.fencing_token,
        idempotency_key=fields.pop("key", uuid.uuid4().hex),
        **fields,
    )


# --- Filing ---------------------------------------------------------------------------------


def test_filing_opens_an_appeal_task_excluding_the_deciders_and_seals_the_statement(
    system, alice, carol
):
    case = decided_case(system, alice)
    appeal = file(case, evidence=[SimpleUploadedFile("letter.pdf", PDF)])

    case.refresh_from_db()
    assert case.status == "under_appeal"
    task = appeal.task
    assert (task.kind, task.queue.slug, task.status) == ("appeal", "appeals", "open")
    assert task.due_at == appeal.filed_at + timedelta(days=30)
    assert set(task.excluded.all()) == {alice}
    # The statement is sealed: its plaintext is nowhere in the row or the trail.
    assert b"doctor" not in bytes(appeal.statement)
    assert appeal_statement(appeal).startswith("The visit was necessary")
    data = last_event("appeal.filed")["data"]
    assert data["statement_sha256"] == appeal.statement_sha256
    assert data["excluded"] == ["rev.alice"] and data["outcome_appealed"] == "deny"
    assert data["evidence"][0]["type"] == "application/pdf"
    assert "doctor" not in TrailEvent.objects.get(action="appeal.filed").body
    assert trail_verify().ok


def test_the_customer_gets_an_email_when_filing_through_the_outbox(system, alice):
    case = decided_case(system, alice)
    file(case)
    message = OutboxMessage.objects.get(topic="appeal.filed")
    assert message.destination == "ana@example.org"
    assert case.reference in message.payload["subject"]
    assert "/notice/" in message.payload["body"]
    if mail.outbox:  # eager Celery delivers at once; a worker would later
        assert mail.outbox[0].to == ["ana@example.org"]


def test_filing_twice_with_one_key_files_one_appeal(system, alice):
    case = decided_case(system, alice)
    key = uuid.uuid4().hex
    first = file(case, idempotency_key=key)
    again = file(case, idempotency_key=key)
    assert first.pk == again.pk
    assert Appeal.objects.count() == 1
    assert TrailEvent.objects.filter(action="appeal.filed").count() == 1


def test_a_second_appeal_while_one_is_open_is_refused(system, alice):
    case = decided_case(system, alice)
    file(case)
    with pytest.raises(AppealRefused) as refused:
        file(case)
    assert refused.value.code == "appeal_open"


def test_an_empty_statement_and_bad_files_are_refused_with_every_problem(system, alice):
    case = decided_case(system, alice)
    html = SimpleUploadedFile("letter.pdf", b"<html><script>alert(1)</script></html>")
    big = SimpleUploadedFile("scan.png", b"\x89PNG\r\n\x1a\n" + b"0" * (10 * 1024 * 1024))
    renamed = SimpleUploadedFile("photo.png", PDF)
    with pytest.raises(Invalid) as invalid:
        file(case, statement="   ", evidence=[html, big, renamed])
    messages = [problem["message"] for problem in invalid.value.fields]
    assert invalid.value.fields[0]["path"] == "statement"
    assert any("not a PDF, JPEG or PNG" in m for m in messages)
    assert any("larger than 10 MB" in m for m in messages)
    assert any("does not match its name" in m for m in messages)
    assert Appeal.objects.count() == 0
    assert Case.objects.get().status == "finalized"


def test_a_case_still_in_review_cannot_be_appealed(system):
    factories.ingest(system, factories.claim_payload(1))
    with pytest.raises(AppealRefused) as refused:
        file(Case.objects.get())
    assert refused.value.code == "not_final"


def test_the_window_closes_after_the_policy_days_and_names_the_date(system, alice):
    case = decided_case(system, alice)
    closes = case.finalized_at + timedelta(days=184)
    with time_machine.travel(closes - timedelta(minutes=1)):
        file(case)  # the last minute is still in time

    other = decided_case(system, alice, 2)
    late = other.finalized_at + timedelta(days=184, seconds=1)
    with time_machine.travel(late), pytest.raises(AppealRefused) as refused:
        file(other)
    assert refused.value.code == "closed"
    assert (other.finalized_at + timedelta(days=184)).strftime("%-d %B %Y") in str(refused.value)


def test_an_urgent_case_is_due_in_72_hours_with_a_higher_priority(system, alice):
    case = decided_case(system, alice, metadata={"amount": 300, "urgent": True})
    appeal = file(case)
    assert appeal.urgent
    assert appeal.task.due_at == appeal.filed_at + timedelta(hours=72)
    assert appeal.task.priority > 10


# --- Independence ---------------------------------------------------------------------------


def test_the_original_reviewer_cannot_claim_the_appeal(system, alice):
    alice.groups.add(*factories.UserFactory(role="appeal_reviewer").groups.all())
    case = decided_case(system, alice)
    file(case)
    assert task_claim_next(user=alice) is None


def test_my_queues_says_which_appeals_are_not_for_the_original_reviewer(system, alice, carol):
    alice.groups.add(*factories.UserFactory(role="appeal_reviewer").groups.all())
    file(decided_case(system, alice))
    page = factories.client_for(alice).get("/").content.decode()
    row = page[page.index("Appeals") :]
    assert "1 not for you: you had a part in it" in row
    assert 'disabled aria-label="Claim next in Appeals"' in row
    assert "Nothing waiting for you in your queues." in page
    other = factories.client_for(carol).get("/").content.decode()
    assert "not for you" not in other and "Nothing waiting" not in other


def test_the_reporting_line_of_a_decider_is_excluded_both_ways(system, alice, carol):
    boss = factories.UserFactory(username="boss", role="appeal_reviewer")
    report = factories.UserFactory(username="report", role="appeal_reviewer")
    alice.manager = boss
    alice.save()
    report.manager = alice
    report.save()
    appeal = file(decided_case(system, alice))
    assert set(appeal.task.excluded.all()) == {alice, boss, report}
    assert task_claim_next(user=boss) is None
    assert task_claim_next(user=report) is None
    assert task_claim_next(user=carol).pk == appeal.task_id


def test_three_levels_up_and_down_are_kept_from_the_appeal(system, alice, carol):
    make = factories.UserFactory
    top = make(username="top", role="appeal_reviewer")
    middle = make(username="middle", role="appeal_reviewer", manager=top)
    alice.manager = middle
    alice.save()
    junior = make(username="junior", role="appeal_reviewer", manager=alice)
    intern = make(username="intern", role="appeal_reviewer", manager=junior)
    appeal = file(decided_case(system, alice))
    assert set(appeal.task.excluded.all()) == {alice, top, middle, junior, intern}
    for person in (top, middle, junior, intern):
        assert task_claim_next(user=person) is None, person.username
    assert task_claim_next(user=carol).pk == appeal.task_id


def test_a_manager_change_while_the_appeal_is_open_counts_at_claim_time(system, alice, carol):
    skip = factories.UserFactory(username="skip", role="appeal_reviewer")
    appeal = file(decided_case(system, alice))
    assert skip not in appeal.task.excluded.all()
    # Since the filing, alice's manager came to report to skip.
    middle = factories.UserFactory(username="middle", role="supervisor", manager=skip)
    alice.manager = middle
    alice.save()
    assert task_claim_next(user=skip) is None  # the line is read again at the claim
    task = ReviewTask.objects.get(pk=appeal.task_id)
    assert (task.status, task.assignee) == ("open", None)
    assert skip in task.excluded.all()  # kept, so the next claim skips it at once
    assert (
        not TrailEvent.objects.filter(action="case.claimed", case=task.case.reference)
        .filter(body__contains='"skip"')
        .exists()
    )
    assert task_claim_next(user=carol).pk == appeal.task_id


def test_a_supervisor_cannot_hand_an_appeal_to_the_line(system, alice, carol, sam):
    from escalations.services.supervision import task_reassign

    appeal = file(decided_case(system, alice))
    skip = factories.UserFactory(username="skip", role="appeal_reviewer")
    alice.manager = factories.UserFactory(username="middle", role="supervisor", manager=skip)
    alice.save()
    with pytest.raises(TaskError) as refused:
        task_reassign(task_id=appeal.task_id, to_user=skip, by=sam)
    assert refused.value.code == "not_independent"
    assert ReviewTask.objects.get(pk=appeal.task_id).assignee is None
    assert task_reassign(task_id=appeal.task_id, to_user=carol, by=sam).assignee == carol


def test_independence_is_checked_again_when_deciding(system, alice, carol):
    appeal = file(decided_case(system, alice))
    task = task_claim_next(user=carol)
    # Since the filing, carol became alice's manager.
    alice.manager = carol
    alice.save()
    with pytest.raises(TaskError) as refused:
        open_and_decide(task, carol, outcome="overturned", final_outcome="approve")
    assert refused.value.code == "not_independent"
    appeal.refresh_from_db()
    assert appeal.status == "received"


# --- Deciding -------------------------------------------------------------------------------


def test_the_statement_must_be_opened_before_deciding_and_opening_is_logged(system, alice, carol):
    file(decided_case(system, alice))
    task = task_claim_next(user=carol)
    with pytest.raises(Invalid) as refused:
        appeal_decide(
            task_id=task.pk,
            user=carol,
            fencing_token=task.fencing_token,
            outcome="upheld",
            final_outcome="",
            reason_code="",
            reasons="Upheld.",
            idempotency_key=uuid.uuid4().hex,
        )
    assert refused.value.code == "statement_unopened"
    appeal = appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    assert appeal.status == "under_review"
    assert last_event("appeal.statement_opened")["actor"] == {"type": "user", "id": "appeal.carol"}
    # Opening again records nothing new.
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    assert TrailEvent.objects.filter(action="appeal.statement_opened").count() == 1


def test_an_overturn_finalizes_the_case_and_tells_the_system_and_the_customer(system, alice, carol):
    system.callback_url = "http://127.0.0.1:9/hook"
    system.save()
    case = decided_case(system, alice)
    file(case)
    task = task_claim_next(user=carol)
    appeal = open_and_decide(task, carol, outcome="overturned", final_outcome="approve")

    case.refresh_from_db()
    assert (case.status, case.final_outcome, case.decided_by) == (
        "appeal_decided",
        "approve",
        "human",
    )
    assert (appeal.status, appeal.outcome, appeal.decided_by) == ("decided", "overturned", carol)
    assert ReviewTask.objects.get(pk=task.pk).status == "done"
    data = last_event("appeal.decided")["data"]
    assert (data["outcome"], data["final_outcome"], data["outcome_appealed"]) == (
        "overturned",
        "approve",
        "deny",
    )
    hook = OutboxMessage.objects.get(topic="case.appeal_decided")
    assert hook.payload["outcome"] == "approve"
    assert hook.payload["appeal"]["outcome"] == "overturned"
    assert hook.payload["reasons"][0]["text"] == appeal.reasons
    assert OutboxMessage.objects.filter(topic="appeal.decided", channel="email").count() == 1
    assert trail_verify().ok


def test_upholding_keeps_the_outcome_and_overturning_needs_a_new_one(system, alice, carol):
    case = decided_case(system, alice)
    file(case)
    task = task_claim_next(user=carol)
    with pytest.raises(Invalid) as invalid:
        open_and_decide(task, carol, outcome="overturned", final_outcome="deny", reasons=" ")
    paths = {problem["path"] for problem in invalid.value.fields}
    assert paths == {"final_outcome", "reasons"}
    appeal = open_and_decide(task, carol, outcome="upheld", final_outcome="approve")
    assert appeal.final_outcome == "deny"
    case.refresh_from_db()
    assert (case.status, case.final_outcome) == ("appeal_decided", "deny")


def test_without_a_catalog_an_appeal_is_decided_with_the_ais_code_or_other(system, alice, carol):
    case = decided_case(system, alice)
    code = case.output["reasons"][0]["code"]
    file(case)
    task = task_claim_next(user=carol)
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    with pytest.raises(Invalid) as invalid:
        decide(task, carol, outcome="overturned", final_outcome="approve", reason_code="XX-1")
    assert [p["path"] for p in invalid.value.fields] == ["reason_code"]
    assert not TrailEvent.objects.filter(action="appeal.decided").exists()

    appeal = decide(task, carol, outcome="overturned", final_outcome="approve", reason_code=code)

    assert appeal.reason_code == code
    assert last_event("appeal.decided")["data"]["reason_code"] == code
    # Other, on the next appeal of another case.
    second = decided_case(system, alice, n=2)
    file(second)
    task = task_claim_next(user=carol)
    appeal = open_and_decide(task, carol, outcome="upheld", reason_code="other")
    assert appeal.reason_code == "other"


def test_deciding_twice_with_one_key_records_one_decision(system, alice, carol):
    file(decided_case(system, alice))
    task = task_claim_next(user=carol)
    first = open_and_decide(task, carol, outcome="upheld", key="k1")
    again = decide(task, carol, outcome="upheld", key="k1")
    assert first.pk == again.pk
    assert TrailEvent.objects.filter(action="appeal.decided").count() == 1


def test_a_review_form_cannot_decide_an_appeal(system, alice, carol):
    file(decided_case(system, alice))
    task = task_claim_next(user=carol)
    with pytest.raises(TaskError) as refused:
        decision_record(
            task_id=task.pk,
            user=carol,
            fencing_token=task.fencing_token,
            decision=DecisionInput(verdict="agree"),
            idempotency_key=uuid.uuid4().hex,
        )
    assert refused.value.code == "not_a_review"


def test_after_an_appeal_decision_the_policy_decides_whether_to_appeal_again(system, alice, carol):
    case = decided_case(system, alice)
    file(case)
    open_and_decide(task_claim_next(user=carol), carol, outcome="upheld")
    with pytest.raises(AppealRefused) as refused:
        file(case)
    assert refused.value.code == "no_appeals_left"

    # A policy that allows two appeals: the second goes to someone new.
    case.policy.document["appeals_allowed"] = 2
    case.policy.save()
    dave = factories.UserFactory(username="dave", role="appeal_reviewer")
    second = file(case)
    assert second.number == 2
    assert carol in second.task.excluded.all()
    assert task_claim_next(user=dave).pk == second.task_id


def test_the_case_api_reports_the_appeal_as_it_goes(system, alice, carol):
    case = decided_case(system, alice)
    api = factories.api_client(system)
    assert api.get(f"/api/v1/cases/{case.reference}").json()["appeal"] is None
    appeal = file(case)
    state = api.get(f"/api/v1/cases/{case.reference}").json()["appeal"]
    assert (state["number"], state["status"], state["outcome"]) == (1, "received", None)
    assert state["due_at"] == appeal.due_at.isoformat()
    open_and_decide(
        task_claim_next(user=carol), carol, outcome="overturned", final_outcome="approve"
    )
    body = api.get(f"/api/v1/cases/{case.reference}").json()
    assert (body["status"], body["outcome"]) == ("appeal_decided", "approve")
    assert body["appeal"]["status"] == "decided"
    assert (body["appeal"]["outcome"], body["appeal"]["final_outcome"]) == ("overturned", "approve")


@pytest.mark.parametrize(
    ("locale", "filed", "decided"),
    [
        ("es-MX", "Hemos recibido su recurso", "Se ha resuelto su recurso"),
        ("en", "We received your appeal", "Your appeal has been decided"),
        ("tlh", "We received your appeal", "Your appeal has been decided"),  # no such language
    ],
)
def test_the_appeal_emails_are_in_the_customers_language(
    system, alice, carol, locale, filed, decided
):
    subject = {"reference": "MBR-1", "email": "ana@example.org", "locale": locale}
    case = decided_case(system, alice, subject=subject)
    file(case)
    task = task_claim_next(user=carol)
    open_and_decide(task, carol, outcome="upheld")
    emails = {m.topic: m.payload for m in OutboxMessage.objects.filter(channel="email")}
    assert emails["appeal.filed"]["subject"].startswith(filed)
    assert emails["appeal.decided"]["subject"].startswith(decided)
    if locale.startswith("es"):
        # Dates as the Spanish notice writes them; not a word of the English.
        assert " de 20" in emails["appeal.filed"]["body"]
        assert "appeal" not in emails["appeal.filed"]["body"].replace("/notice/", "")

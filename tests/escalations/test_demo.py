"""The demo's work: decided claims, appeals waiting for appeal.carol, and
customer links that open."""

from io import StringIO

from django.core.management import call_command
from django.test import Client

from escalations.models import Appeal
from reviews.models import Case, ReviewTask
from reviews.services.assignment import task_claim_next
from workbench.models import User
from workbench.services import trail_verify


def test_the_demo_has_appeals_for_the_appeal_reviewer_and_customer_links(db):
    out = StringIO()
    call_command("load_demo", "--cases", "120", stdout=out)
    output = out.getvalue()

    appeals = Appeal.objects.all()
    assert appeals.count() == 4
    assert all(appeal.case.status == Case.Status.UNDER_APPEAL for appeal in appeals)
    assert "4 are appealed" in output
    links = [line.split()[0] for line in output.splitlines() if "/notice/" in line]
    assert len(links) == 4
    for link in links:
        response = Client().get(link.removeprefix("http://testserver"))
        assert response.status_code == 200
        assert "Statement of reasons" in response.content.decode()

    # The appeal reviewer gets them; the reviewers who decided them do not.
    carol = User.objects.get(username="appeal.carol")
    task = task_claim_next(user=carol)
    assert task.kind == ReviewTask.Kind.APPEAL
    decider = Appeal.objects.get(task=task).case.decisions.get().reviewer
    assert decider.username in {"rev.alice", "rev.bob"}
    assert decider in task.excluded.all()
    assert trail_verify().ok


def test_demo_customers_open_their_notices_and_answer_the_two_questions(db):
    """Issue 16: the justice audit has data in the first minute."""
    import json
    from collections import Counter

    from reviews.models import Feedback
    from workbench.models import TrailEvent

    out = StringIO()
    call_command("load_demo", "--cases", "300", stdout=out)

    answers = [
        json.loads(body)
        for body in TrailEvent.objects.filter(action="case.feedback").values_list("body", flat=True)
    ]
    by_decider = Counter(answer["data"]["decided_by"] for answer in answers)
    assert by_decider["human"] >= 5 and by_decider["ai"] >= 5
    assert len({answer["data"]["listened"] for answer in answers}) >= 3  # varied
    assert any(answer["data"]["comment_sha256"] for answer in answers)
    feedback = Feedback.objects.select_related("case__subject", "case__system")
    assert {f.case.subject.locale for f in feedback} == {"en", "es"}
    assert {f.case.system.slug for f in feedback} == {"claims-ai", "support-bot"}
    opened = Counter(
        TrailEvent.objects.filter(action="notice.opened").values_list("case", flat=True)
    )
    assert len(opened) >= 20 and set(opened.values()) == {1}
    assert "answered the two questions" in out.getvalue()
    assert trail_verify().ok

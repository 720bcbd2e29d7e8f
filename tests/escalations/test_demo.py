"""The demo's work: decided claims, appeals waiting for appeal.carol, and
customer links that open."""

import json
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

    # Six claims appealed, four of them decided by appeal.carol; the one chat
    # a person refused is appealed too. The rest wait in the appeal queues.
    appeals = Appeal.objects.select_related("case__system", "decided_by")
    assert appeals.count() == 7
    decided = [a for a in appeals if a.status == Appeal.Status.DECIDED]
    waiting = [a for a in appeals if a.status != Appeal.Status.DECIDED]
    assert {a.outcome for a in decided} == {"upheld", "overturned", "modified"}
    assert all(a.case.status == Case.Status.APPEAL_DECIDED for a in decided)
    assert {a.decided_by.username for a in decided} == {"appeal.carol"}
    assert len(waiting) == 3
    assert all(a.case.status == Case.Status.UNDER_APPEAL for a in waiting)
    assert {a.case.system.slug for a in waiting} == {"claims-ai", "support-bot"}
    assert "7 are appealed: appeal.carol decided 4" in output
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
    assert decider.username in {"rev.alice", "rev.bob", "rev.chen", "rev.dora"}
    assert decider in task.excluded.all()
    assert trail_verify().ok


def test_demo_customers_open_their_notices_and_answer_the_two_questions(db):
    """Issue 16: the justice audit has data in the first minute."""
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


# The scorecard lines the demo must fill (issue 16, item 5): on both systems.
FILLED = [
    "overturn_rate",
    "appeal_median_days",
    "appeal_p90_days",
    "independence_violations",
    "time_to_human",
    "rating_human",
    "rating_ai",
    "connection_index",
]


def test_the_demo_fills_the_justice_scorecard_of_both_systems(db):
    """A new user sees a filled scorecard in the first minute: appeals decided
    by someone independent, contests taken up by a person, a fairness segment
    on each system, and a person's time on every decision."""
    from datetime import timedelta

    from django.utils import timezone

    from reviews.models import Decision
    from workbench.metrics import metrics_report, metrics_rollup_update
    from workbench.metrics.hybrid import hybrid_figures
    from workbench.metrics.justice import justice_scorecard
    from workbench.models import AISystem, TrailEvent

    call_command("load_demo", stdout=StringIO())

    today = timezone.now().date()
    for system in AISystem.objects.all():
        card = justice_scorecard(system=system, start=today - timedelta(days=29), end=today)
        for key in FILLED:
            line = card.line(key)
            assert line.status != "no data" and line.value is not None, (system.slug, key)
        gaps = [line for line in card.lines if line.key.startswith("adverse_gap:")]
        assert gaps and all(line.value is not None for line in gaps), system.slug
        assert card.line("independence_violations").value == 0, system.slug
        assert card.line("independence_violations").n >= 2, system.slug
        total = card.connection.total
        assert total.contests >= 1 and total.appeals >= 2, system.slug
        # Some appeals wait, so that appeal.carol's queue is not empty.
        assert (
            Appeal.objects.filter(case__system=system)
            .exclude(status=Appeal.Status.DECIDED)
            .exists()
        ), system.slug

    # A person's time on each decision: minutes, not the demo's milliseconds.
    seconds = list(Decision.objects.values_list("seconds_spent", flat=True))
    assert seconds and all(40 <= s < 302 for s in seconds)
    assert len({round(s) for s in seconds}) > len(seconds) // 2  # varied
    appeal_seconds = [
        json.loads(body)["data"]["seconds"]
        for body in TrailEvent.objects.filter(action="appeal.decided").values_list(
            "body", flat=True
        )
    ]
    assert len(appeal_seconds) >= 4 and all(240 <= s < 902 for s in appeal_seconds)
    metrics_rollup_update()
    report = metrics_report(start=today, end=today)
    hybrid = hybrid_figures(report.total)
    assert hybrid.minutes_per_100 and hybrid.minutes_per_100 > 10
    assert trail_verify().ok

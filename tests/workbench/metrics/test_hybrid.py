"""The hybrid AI-human figures (workbench.metrics.hybrid): counted into the
rollups from a trail written by hand, read as the dashboard reads them."""

from datetime import date

import pytest

from tests import factories
from tests.workbench.metrics.handtrail import at, put, received, system_made, user
from tests.workbench.metrics.world import snapshot
from workbench.metrics import RubberStampRules, metrics_report, metrics_rollup_update
from workbench.metrics.hybrid import hybrid_figures
from workbench.metrics.rollup import metrics_rollup_reset
from workbench.metrics.stats import Rate

S = "claims-ai"
DAY = date(2026, 11, 10)


def verdict(moment, ref, who, action, verdict, seconds, **extra):
    put(moment, action, system=S, case=ref, actor=user(who), verdict=verdict,
        seconds=seconds, **extra)  # fmt: skip


def hybrid_trail():
    """On 10 Nov 2026, six cases:

    H1  queue review: rev.alice agrees (10 s)
    H2  queue senior (two reviews): rev.alice agrees (20 s, review 1 of 2), rev.bob
        overrides (100 s)
    H3  queue review: rev.bob escalates (50 s) to supervisor; sup.sam agrees (200 s)
    H4  finalized by the AI; appealed, decided by appeal.carol (300 s)
    H5  finalized by the AI
    H6  queue review: rev.alice agrees (5 s); appealed, decided by appeal.carol (600 s)
    """
    system_made(S, "claim_decision")
    finalized = {"status": "finalized", "reason": "default", "rule": None, "queue": None}
    for ref, queue in (("H1", "review"), ("H2", "senior"), ("H3", "review"), ("H6", "review")):
        received(at(10), ref, system=S, subject=ref, version="v1", queue=queue)
    for ref in ("H4", "H5"):
        received(at(10), ref, system=S, subject=ref, version="v1", **finalized)
    verdict(at(10, 10), "H1", "rev.alice", "case.decided", "agree", 10)
    verdict(at(10, 10), "H2", "rev.alice", "case.reviewed", "agree", 20, review=1, of=2)
    verdict(at(10, 11), "H2", "rev.bob", "case.decided", "override", 100)
    verdict(at(10, 10), "H3", "rev.bob", "case.escalated", "escalate", 50, queue="supervisor")
    verdict(at(10, 12), "H3", "sup.sam", "case.decided", "agree", 200)
    put(at(10, 13), "appeal.filed", system=S, case="H4", actor=user("x"), appeal=1, queue="appeals")
    put(at(10, 14), "appeal.decided", system=S, case="H4", actor=user("appeal.carol"), appeal=1,
        outcome="upheld", seconds=300)  # fmt: skip
    verdict(at(10, 10), "H6", "rev.alice", "case.decided", "agree", 5)
    put(at(10, 13), "appeal.filed", system=S, case="H6", actor=user("x"), appeal=1, queue="appeals")
    put(at(10, 15), "appeal.decided", system=S, case="H6", actor=user("appeal.carol"), appeal=1,
        outcome="upheld", seconds=600)  # fmt: skip


def test_the_hybrid_figures_by_hand(db):
    hybrid_trail()
    metrics_rollup_update()
    (claims,) = metrics_report(start=DAY, end=DAY).systems
    h = hybrid_figures(claims)
    # Final decisions: H4, H5 by the AI; H1, H2, H3, H6 by a person: 2 of 6 automated.
    assert h.automation == Rate(2, 6)
    # Handled by a person: H1, H2, H3, H4 (its appeal), H6: 5 of the 6 received.
    assert h.human_touch == Rate(5, 6)
    # 10 + 20 + 100 + 50 + 200 + 300 + 5 + 600 = 1285 s = 21.417 min; per 100 of the 6
    # final decisions: 21.417 / 6 * 100 = 356.94.
    assert h.reviewer_minutes == pytest.approx(1285 / 60)
    assert h.minutes_per_100 == pytest.approx(1285 / 60 / 6 * 100)
    # Agree / (agree + override) by the queue of the verdict: review H1, H6 (2 of 2);
    # senior H2's two reviews (1 of 2); supervisor H3 after its escalation (1 of 1).
    assert h.agreement == [("review", Rate(2, 2)), ("senior", Rate(1, 2)),
                           ("supervisor", Rate(1, 1))]  # fmt: skip
    # Handled more than once: H2 (second review), H3 (escalation), H6 (appeal): 3 of 5.
    assert h.rework == Rate(3, 5)
    assert h.rework_by == {"appeal": 1, "escalation": 1, "second_review": 1}
    # Default rules (50 verdicts at least): nobody is flagged.
    assert (h.stamp_decisions, h.stamp_reviewers) == (0, [])
    # With 2 verdicts at least: rev.alice agreed 3 of 3 (> 98%), all under 30 s (10, 20,
    # 5 s): 3 fast agreements of the 5 verdicts (alice 3, bob 1, sam 1), 35 s = 0.583 min.
    # sup.sam agreed 1 of 1 but has one verdict only; rev.bob overrode.
    loose = hybrid_figures(claims, RubberStampRules(min_cases=2))
    assert (loose.stamp_decisions, loose.stamp_reviewers) == (3, ["rev.alice"])
    assert loose.stamp_share == Rate(3, 5)
    assert loose.stamp_minutes == pytest.approx(35 / 60)


def test_the_hybrid_counts_do_not_depend_on_the_batches(db):
    hybrid_trail()
    metrics_rollup_update(batch=2)  # a case's handlings fall in different batches
    small = snapshot()
    metrics_rollup_reset()
    metrics_rollup_update()
    assert snapshot() == small


def test_an_empty_range_has_no_hybrid_figures(db):
    hybrid_trail()
    metrics_rollup_update()
    h = hybrid_figures(metrics_report(start=date(2027, 1, 1), end=date(2027, 1, 2)).total)
    assert h.automation.value is None and h.human_touch.value is None
    assert h.minutes_per_100 is None and h.rework.value is None and h.agreement == []
    assert h.stamp_share.value is None


def test_the_dashboard_shows_the_hybrid_figures(db):
    hybrid_trail()
    dana = factories.UserFactory(role="compliance")
    page = (
        factories.client_for(dana)
        .get("/compliance/", {"start": "2026-11-10", "end": "2026-11-10"})
        .content.decode()
    )
    assert "Hybrid AI-human work" in page
    assert "<dt>Automation rate</dt><dd>33.3%</dd>" in page
    assert "<dt>Human-touch rate</dt><dd>83.3%</dd>" in page
    assert "<dt>Reviewer minutes per 100 cases</dt><dd>356.9</dd>" in page
    assert "<dt>Rework</dt><dd>60.0%</dd>" in page
    assert "after an escalation: 1" in page and "second review: 1" in page
    assert "<code>senior</code>" in page and "0 fast agreements" in page

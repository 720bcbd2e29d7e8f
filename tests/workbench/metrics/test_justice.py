"""The justice audit scorecard (workbench.metrics.justice) on the trail
written by hand in tests/workbench/metrics/handtrail.py (claims_trail): every
line worked out here, with its interval, threshold and status."""

from datetime import date

import pytest

from tests import factories
from tests.factories import ACTOR
from tests.workbench.metrics.handtrail import END, START, at, claims_trail, put
from workbench.metrics.justice import justice_scorecard
from workbench.metrics.thresholds import (
    FAILS,
    HOLDS,
    NO_DATA,
    WATCH,
    audit_defaults,
    audit_thresholds_resolve,
    line_status,
)
from workbench.services.trail import trail_integrate

T_975_2 = 4.302652729749  # Student's t, 97.5%, 2 degrees of freedom (tables)


def card_of(system, **kwargs):
    return justice_scorecard(system=system, start=START, end=END, **kwargs)


def test_every_line_of_the_scorecard_by_hand(db):
    card = card_of(claims_trail())
    lines = {line.key: line for line in card.lines}
    # First final outcomes in the range: C1 adverse (decided), C2 not (AI), C3 not
    # (overridden), C4 adverse (AI), C5 adverse (QA override), C6 adverse (decided).

    # --- distributive -------------------------------------------------------------------
    gap = lines["adverse_gap:metadata.region"]
    # North C1, C2, C4, C5: 3 of 4 adverse; south C3, C6: 1 of 2. Gap 0.75 - 0.5 = 0.25.
    # Wilson 3/4: 0.3006-0.9544; 1/2: 0.0945-0.9055. Newcombe:
    # 0.25 - sqrt((0.75-0.3006)^2 + (0.9055-0.5)^2) = -0.3553,
    # 0.25 + sqrt((0.9544-0.75)^2 + (0.5-0.0945)^2) = 0.7041.
    assert gap.value == pytest.approx(0.25) and gap.detail == "north over south"
    assert gap.interval == (pytest.approx(-0.35525, abs=1e-4), pytest.approx(0.70408, abs=1e-4))
    assert (gap.threshold, gap.status) == (0.10, WATCH)  # the interval crosses 0.10
    assert sorted(gap.cases) == [
        ("C1", True), ("C2", False), ("C3", False), ("C4", True), ("C5", True), ("C6", True),
    ]  # fmt: skip
    overturn = lines["overturn_rate"]
    # Appeals decided: C1 overturned, C3 upheld, C4 modified: 2 of 3 changed,
    # Wilson 0.2077-0.9385, wholly above 0.20: fails.
    assert (overturn.value, overturn.n) == (pytest.approx(2 / 3), 3)
    assert overturn.interval == (pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4))
    assert overturn.status == FAILS
    assert sorted(overturn.cases) == [("C1", True), ("C3", False), ("C4", True)]
    qa = lines["qa_error_rate"]
    assert (qa.value, qa.n, qa.status) == (1.0, 1, FAILS)  # C5: 1 of 1, Wilson 0.2065-1
    assert qa.interval[0] == pytest.approx(0.2065, abs=1e-4)

    # --- procedural ---------------------------------------------------------------------
    notice = lines["notice_opened"]
    # Adverse: C1 (opened), C4, C5, C6: 1 of 4, Wilson 0.0456-0.6994 crosses 0.50: watch.
    assert (notice.value, notice.n, notice.status) == (0.25, 4, WATCH)
    assert notice.interval[1] == pytest.approx(0.6994, abs=1e-4)
    appeal_rate = lines["appeal_rate"]
    # Filed in the range: C1, C3, C4, of 6 first decisions: 0.5, Wilson 0.1876-0.8124,
    # wholly above 0.15: fails.
    assert (appeal_rate.value, appeal_rate.status) == (0.5, FAILS)
    assert appeal_rate.interval[0] == pytest.approx(0.1876, abs=1e-4)
    # From filing to decision: C1 2 days, C3 6, C4 4: median 4, p90 the 3rd of 3 = 6.
    assert (lines["appeal_median_days"].value, lines["appeal_median_days"].status) == (4, HOLDS)
    assert (lines["appeal_p90_days"].value, lines["appeal_p90_days"].status) == (6, HOLDS)
    breaches = lines["deadline_breaches"]
    assert (breaches.value, breaches.threshold, breaches.status) == (1, 0, FAILS)
    assert breaches.cases == [("C6", True)]
    independence = lines["independence_violations"]
    # C3's appeal was decided by sup.sam, who became rev.bob's manager on 1 Nov
    # (user.changed); rev.bob decided C3. C1 (appeal.carol) and C4 are clean.
    assert (independence.value, independence.threshold, independence.status) == (1, 0, FAILS)
    assert sorted(independence.cases) == [("C1", False), ("C3", True), ("C4", False)]
    human = lines["human_share"]
    # C1, C3, C5, C6 of 6: 0.6667, Wilson 0.3000-0.9032, wholly above 0.10: holds.
    assert (human.value, human.status) == (pytest.approx(4 / 6), HOLDS)

    # --- interactional ------------------------------------------------------------------
    index = lines["connection_index"]
    # Listened 1, 5, 4, 3: 3.25 -> 56.25; explained 2, 4, 4, 5: 3.75 -> 68.75; came back
    # C4 (S1 had C1) and C6 (S6 had C7 on 20 Oct): 2 of 6 -> 66.667; 3 appeals per 6
    # decisions = 50 per 100 -> 50. No sentiment, no distressed customer.
    # (25*56.25 + 25*68.75 + 10*66.667 + 10*50) / 70 = 4291.667 / 70 = 61.3095.
    assert index.value == pytest.approx(61.30952, abs=1e-4)
    assert (index.n, index.status) == (4, HOLDS)
    assert index.detail == "from 4 of 6 parts (weight 70 of 100)"  # 25 + 25 + 10 + 10
    assert lines["time_to_human"].status == NO_DATA
    rating_human, rating_ai = lines["rating_human"], lines["rating_ai"]
    # Human: C1 (1+2)/2 = 1.5, C3 4, C4 (3+5)/2 = 4: mean 3.1667, s = 1.4434, half-width
    # 4.30265 * 1.4434 / sqrt(3) = 3.5855: -0.42 to 6.75, kept to 1-5; crosses 3.5: watch.
    assert rating_human.value == pytest.approx(9.5 / 3)
    assert rating_human.interval == (1, 5) and rating_human.status == WATCH
    # AI: C2 (5+4)/2 = 4.5, one answer: no interval; 4.5 >= 3.5 holds.
    assert (rating_ai.value, rating_ai.interval, rating_ai.status) == (4.5, None, HOLDS)


def test_one_model_version_and_the_policys_thresholds_from_the_trail(db):
    system = claims_trail()
    audit = {**audit_defaults(), "overturn_rate": 0.9, "deadline_breaches": 1}
    put(at(1), "policy.published", system="claims-ai", actor=ACTOR, version=3, audit=audit)
    card = card_of(system)
    assert card.policy_version == 3
    overturn = card.line("overturn_rate")
    # 2 of 3, Wilson 0.2077-0.9385 now crosses 0.9: watch.
    assert (overturn.threshold, overturn.status) == (0.9, WATCH)
    assert card.line("deadline_breaches").status == HOLDS  # 1 <= 1

    v1 = card_of(system, model_version="v1")
    # C1, C2, C3: appeals decided C1 (overturned), C3 (upheld): 1 of 2.
    assert (v1.line("overturn_rate").value, v1.line("overturn_rate").n) == (0.5, 2)
    assert v1.line("human_share").value == pytest.approx(2 / 3)  # C1, C3 of C1-C3
    assert v1.versions == ["v1", "v2"]


def test_an_index_with_less_than_half_its_weight_behind_it_is_on_watch(db):
    system = claims_trail()
    card = justice_scorecard(system=system, start=date(2026, 11, 9), end=date(2026, 11, 9))
    index = card.line("connection_index")
    # 9 Nov: C4 alone, finalized by the AI; its answer comes on 15 Nov. Came back (S1 had
    # C1 on 2 Nov): 1 of 1 -> 0; no contest or appeal that day -> 100. Weight 20:
    # (10 * 0 + 10 * 100) / 20 = 50, under 60, but too little to fail: watch.
    assert index.value == 50 and index.detail == "from 2 of 6 parts (weight 20 of 100)"
    assert index.status == WATCH


def test_an_empty_range_is_no_data_without_dividing_by_zero(db):
    system = claims_trail()
    card = justice_scorecard(system=system, start=date(2027, 1, 1), end=date(2027, 1, 31))
    statuses = {line.key: line.status for line in card.lines}
    assert statuses.pop("deadline_breaches") == HOLDS  # 0 breaches
    assert set(statuses.values()) == {NO_DATA}
    assert card.connection.total.index is None


def test_the_status_rule():
    # At most 0.10: an interval wholly under holds, wholly over fails, across: watch.
    assert line_status(0.05, 0.10, "at_most", (0.01, 0.09)) == HOLDS
    assert line_status(0.30, 0.10, "at_most", (0.11, 0.50)) == FAILS
    assert line_status(0.08, 0.10, "at_most", (0.02, 0.20)) == WATCH
    assert line_status(0.6, 0.5, "at_least", (0.51, 0.7)) == HOLDS
    assert line_status(0.3, 0.5, "at_least", (0.1, 0.49)) == FAILS
    assert line_status(0.4, 0.5, "at_least", (0.2, 0.6)) == WATCH
    # Without an interval, the value decides; without a value: no data.
    assert line_status(0, 0, "at_most") == HOLDS and line_status(1, 0, "at_most") == FAILS
    assert line_status(None, 0.1, "at_most", None) == NO_DATA


def test_the_audit_thresholds_of_a_policy():
    problems = []
    assert audit_thresholds_resolve(None, problems) == audit_defaults() and problems == []
    resolved = audit_thresholds_resolve({"overturn_rate": 0.3}, problems)
    assert resolved["overturn_rate"] == 0.3 and resolved["qa_error_rate"] == 0.05
    audit_thresholds_resolve({"overturn": 0.3, "rating": 7, "human_share": True}, problems)
    assert any("unknown threshold 'overturn'" in p for p in problems)
    assert any(p.startswith("audit.rating: a number from 1 to 5") for p in problems)
    assert any(p.startswith("audit.human_share:") for p in problems)
    problems = []
    audit_thresholds_resolve(["overturn_rate"], problems)
    assert problems == ["audit: must map scorecard lines to thresholds"]


def test_the_scorecard_reads_a_few_queries_of_the_trail(db, django_assert_max_num_queries):
    system = claims_trail()
    trail_integrate()  # PostgreSQL: the hand-built events are chained first
    # references; their events; earlier receipts; users; the policy (+ is anything pending?)
    with django_assert_max_num_queries(5 + factories.trail_wait_queries()):
        card_of(system)

"""The connection index (workbench.metrics.connection), on a trail written
by hand (tests/workbench/metrics/handtrail.py), each figure worked out here."""

from datetime import date

import pytest

from tests.workbench.metrics.handtrail import END, START, support_trail
from workbench.metrics.casefile import system_trail
from workbench.metrics.connection import connection_report
from workbench.metrics.stats import Rate

T_975_2 = 4.302652729749  # Student's t, 97.5%, 2 degrees of freedom (tables)


def test_every_part_and_the_index_of_a_chat_system(db):
    support_trail()
    report = connection_report(system_trail(system="support-bot", start=START, end=END))
    m = report.total

    # Cohort: the cases with a final decision in the range: K1, K2 (decided), K3
    # (finalized, then decided after the contest), K6 (finalized). K4, K5 wait.
    assert sorted(m.cohort) == ["K1", "K2", "K3", "K6"]
    assert sorted(m.answered) == ["K1", "K3", "K6"]
    assert m.response == Rate(3, 4)
    # Listened 4, 3, 5: mean 4, s = 1, half-width t(.975, 2) * 1 / sqrt(3) = 2.4841;
    # 1.5159 to 6.4841, kept inside 1..5.
    assert m.listened.value == 4
    assert m.listened.interval == (pytest.approx(4 - T_975_2 / 3**0.5), 5)
    assert m.listened.low == pytest.approx(1.51586, abs=1e-5)
    # Explained 5, 3, 5: mean 13/3 = 4.3333; s = sqrt((2 * (2/3)^2 + (4/3)^2) / 2) = 1.1547;
    # half-width 4.30265 * 1.1547 / 1.73205 = 2.86844; low 1.46489.
    assert m.explained.value == pytest.approx(13 / 3)
    assert m.explained.low == pytest.approx(1.46489, abs=1e-5) and m.explained.high == 5

    # Sentiment: (-0.8 - 0.6 + 0.5 + 0.2 - 0.9 + 0.0) / 6 = -1.6 / 6 = -0.26667.
    assert m.sentiment.value == pytest.approx(-1.6 / 6)
    # ISO weeks: W45 (2-8 Nov) K1, K2, K3: -0.9 / 3 = -0.3; W46: K4, K5, K6: -0.7 / 3.
    assert [(week, mean.n) for week, mean in m.weekly] == [("2026-W45", 3), ("2026-W46", 3)]
    assert m.weekly[0][1].value == pytest.approx(-0.3)
    assert m.weekly[1][1].value == pytest.approx(-0.7 / 3)

    # Time to a human: K1 30 min (comp.dana's reading at 10:05 does not count), K2 120
    # min, K3 10 min from its contest; K4 and K5 still wait.
    waits = {e.reference: e.seconds for e in m.distressed}
    assert waits == {"K1": 1800, "K2": 7200, "K3": 600, "K4": None, "K5": None}
    assert m.time_median == 1800  # of 600, 1800, 7200
    assert m.time_p90 == 7200  # the ceil(0.9 * 3) = 3rd
    # Within 60 minutes: K1 and K3 of K1, K2, K3, K4 (K4 has waited longer than 60
    # minutes by the end of the range; K5 only 30: not counted yet).
    assert m.within_target == Rate(2, 4)

    # Came back: K6's subject U1 had K1 nine days before: 1 of the 6 received.
    assert m.came_back == Rate(1, 6)
    # First decisions: K1, K2, K3 twice (the AI, then a person after the contest),
    # K6 = 5; 1 contest, 0 appeals: 20 per 100 decisions.
    assert (m.decisions, m.contests, m.appeals, m.per_100) == (5, 1, 0, 20)

    parts = {part.key: part.score for part in m.parts}
    assert parts == {
        "listened": pytest.approx(75),  # 100 * (4 - 1) / 4
        "explained": pytest.approx(250 / 3),  # 100 * (13/3 - 1) / 4 = 83.333
        "sentiment": pytest.approx(110 / 3),  # 100 * (-0.26667 + 1) / 2 = 36.667
        "time_to_human": pytest.approx(50),  # 100 * 2 / 4
        "came_back": pytest.approx(250 / 3),  # 100 * (1 - 1/6)
        "contests_appeals": pytest.approx(80),  # 100 - 20
    }
    # (25*75 + 25*83.333 + 10*36.667 + 20*50 + 10*83.333 + 10*80) / 100 = 69.5833
    assert m.index == pytest.approx(69.58333, abs=1e-4)
    assert m.parts_used == 6


def test_the_index_by_model_version_and_queue(db):
    support_trail()
    report = connection_report(system_trail(system="support-bot", start=START, end=END))
    assert [v.label for v in report.versions] == ["7", "8"]
    assert [q.label for q in report.queues] == ["—", "chat-escalations"]
    v7, v8 = report.versions
    assert v7.response == Rate(2, 3) and v8.response == Rate(1, 1)  # K1, K3 of K1-K3; K6
    assert v8.within_target == Rate(0, 1)  # K4 waited too long; K5 not counted yet
    # Version 8 alone: listened 5 and explained 5 (K6, n = 1: no interval).
    assert v8.listened.value == 5 and v8.listened.interval is None
    finalized, escalations = report.queues
    assert sorted(finalized.cohort) == ["K3", "K6"]
    assert escalations.came_back == Rate(0, 4)  # K1, K2, K4, K5: none came back
    only_7 = connection_report(
        system_trail(system="support-bot", start=START, end=END), model_version="7"
    )
    assert only_7.total.response == Rate(2, 3) and len(only_7.versions) == 1


def test_an_empty_range_has_no_data_and_no_index(db):
    support_trail()
    trail = system_trail(system="support-bot", start=date(2027, 1, 1), end=date(2027, 1, 31))
    m = connection_report(trail).total
    assert m.index is None and m.parts_used == 0
    assert all(part.score is None and part.text == "no data" for part in m.parts)
    assert m.response == Rate(0, 0) and m.response.value is None and m.per_100 is None
    assert m.time_median is None and m.time_p90 is None and m.weekly == []


def test_the_latest_answer_counts_and_a_changed_answer_supersedes(db):
    from tests.workbench.metrics.handtrail import claims_trail

    claims_trail()
    m = connection_report(system_trail(system="claims-ai", start=START, end=END)).total
    # C1 answered 2/3, then changed to 1/2: listened 1, 5, 4, 3 (C1-C4): 13/4 = 3.25.
    assert sorted(m.listened.values) == [1, 3, 4, 5]
    assert m.listened.value == 3.25 and m.explained.value == 3.75  # 2, 4, 4, 5

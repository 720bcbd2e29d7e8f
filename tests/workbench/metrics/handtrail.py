"""Trails written by hand for the audit's tests: each event with its time,
actor and data, through the one trail writer (``trail_append``), so that a
figure can be worked out on paper from the list below."""

from datetime import UTC, date, datetime

import time_machine
from django.db import transaction

from tests.factories import ACTOR
from workbench.models import AISystem
from workbench.services.systems import ai_system_create
from workbench.services.trail import Actor, trail_append

START, END = date(2026, 11, 2), date(2026, 11, 15)  # Monday of ISO week 45 to Sunday of 46


def at(day: int, hour: int = 9, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def put(moment, action, *, system, case=None, actor=None, **data):
    with time_machine.travel(moment, tick=False), transaction.atomic():
        trail_append(
            action=action,
            actor=actor or Actor.system(system),
            case=case,
            system=system,
            data=data,
        )


def user(name: str) -> Actor:
    return Actor("user", name)


def customer(subject: str) -> Actor:
    return Actor("customer", subject)


def system_made(slug: str, kind: str) -> AISystem:
    with time_machine.travel(at(1, month=10), tick=False):
        return ai_system_create(slug=slug, name=slug, kind=kind, actor=ACTOR)


def received(moment, ref, *, system, subject, version, sentiment=None, region=None, **routed):
    """A case's case.received and case.routed, as intake writes them."""
    data = {"subject": subject, "model": {"name": "m", "version": version}, "outcome": "x"}
    if sentiment is not None:
        data["sentiment"] = sentiment
    put(moment, "case.received", system=system, case=ref, **data)
    route = {
        "status": "pending_review",
        "reason": "rule",
        "rule": "r",
        "queue": "review",
        "adverse": False,
        "segments": {} if region is None else {"metadata.region": region},
        "distressed": False,
        **routed,
    }
    put(moment, "case.routed", system=system, case=ref, **route)


def feedback(moment, ref, *, system, subject, listened, explained, decided_by, **extra):
    put(
        moment,
        "case.feedback",
        system=system,
        case=ref,
        actor=customer(subject),
        listened=listened,
        explained=explained,
        source="notice",
        comment_sha256=None,
        decided_by=decided_by,
        stage=extra.pop("stage", "decision"),
        changed=extra.pop("changed", False),
    )


def claims_trail() -> AISystem:
    """claims-ai, 2 to 15 Nov 2026 (and one case of 20 Oct):

    case  version region subject  what happens
    C1    v1      north  S1  2 Nov decided by rev.alice (agree, adverse, 20 s);
                             notice opened; feedback 2/3 then changed to 1/2 (human);
                             appealed 5 Nov, overturned 7 Nov by appeal.carol (2 days)
    C2    v1      north  S2  2 Nov finalized by the AI (not adverse); feedback 5/4 (ai)
    C3    v1      south  S3  3 Nov decided by rev.bob (override, not adverse, 100 s);
                             feedback 4/4 (human); appealed 6 Nov with no one excluded,
                             upheld 12 Nov by sup.sam, rev.bob's manager (6 days)
    C4    v2      north  S1  9 Nov finalized by the AI (adverse); appealed 10 Nov,
                             modified 14 Nov by appeal.carol (4 days); feedback 3/5
                             (human, on the appeal)
    C5    v2      north  S5  10 Nov QA sample, overridden by rev.alice (adverse, 10 s)
    C6    v2      south  S6  11 Nov routed; overdue 13 Nov; decided 14 Nov by rev.bob
                             (agree, adverse, 40 s)
    C7    v1      -      S6  20 Oct finalized by the AI (before the range)
    """
    s = "claims-ai"
    system = system_made(s, "claim_decision")
    with time_machine.travel(at(1, month=10), tick=False), transaction.atomic():
        for name, manager in (("sup.sam", None), ("rev.alice", "sup.sam"), ("rev.bob", None)):
            data = {"username": name, "role": "reviewer", "manager": manager}
            trail_append(action="user.created", actor=ACTOR, data=data)
        trail_append(action="user.created", actor=ACTOR, data={"username": "appeal.carol"})
    # rev.bob reports to sup.sam from 1 Nov (a change recorded in the trail).
    put(at(1), "user.changed", system=None, actor=ACTOR, username="rev.bob", manager="sup.sam")
    put(at(1), "user.changed", system=None, actor=ACTOR, username="rev.alice", manager="sup.sam")
    finalized = {"status": "finalized", "reason": "default", "rule": None, "queue": None}

    received(at(20, month=10), "C7", system=s, subject="S6", version="v1", **finalized)

    received(at(2), "C1", system=s, subject="S1", version="v1", region="north", adverse=True)
    put(at(2, 9, 30), "case.claimed", system=s, case="C1", actor=user("rev.alice"))
    decided(at(2, 10), "C1", "rev.alice", "agree", adverse=True, seconds=20)
    put(at(2, 12), "notice.opened", system=s, case="C1", actor=customer("S1"), adverse=True)
    feedback(at(3), "C1", system=s, subject="S1", listened=2, explained=3, decided_by="human")
    feedback(
        at(4), "C1", system=s, subject="S1", listened=1, explained=2, decided_by="human",
        changed=True,
    )  # fmt: skip
    put(at(5), "appeal.filed", system=s, case="C1", actor=customer("S1"), appeal=1,
        excluded=["rev.alice", "sup.sam"])  # fmt: skip
    put(at(7), "appeal.decided", system=s, case="C1", actor=user("appeal.carol"), appeal=1,
        outcome="overturned", seconds=600)  # fmt: skip

    received(at(2), "C2", system=s, subject="S2", version="v1", region="north", **finalized)
    feedback(at(3), "C2", system=s, subject="S2", listened=5, explained=4, decided_by="ai")

    received(at(3), "C3", system=s, subject="S3", version="v1", region="south", adverse=True)
    decided(at(3, 11), "C3", "rev.bob", "override", adverse=False, seconds=100)
    feedback(at(4), "C3", system=s, subject="S3", listened=4, explained=4, decided_by="human")
    put(at(6), "appeal.filed", system=s, case="C3", actor=customer("S3"), appeal=1, excluded=[])
    put(at(12), "appeal.decided", system=s, case="C3", actor=user("sup.sam"), appeal=1,
        outcome="upheld", seconds=300)  # fmt: skip

    received(at(9), "C4", system=s, subject="S1", version="v2", region="north",
             **{**finalized, "adverse": True})  # fmt: skip
    put(at(10), "appeal.filed", system=s, case="C4", actor=customer("S1"), appeal=1, excluded=[])
    put(at(14), "appeal.decided", system=s, case="C4", actor=user("appeal.carol"), appeal=1,
        outcome="modified", seconds=900)  # fmt: skip
    feedback(at(15), "C4", system=s, subject="S1", listened=3, explained=5, decided_by="human",
             stage="appeal")  # fmt: skip

    received(at(10), "C5", system=s, subject="S5", version="v2", region="north",
             reason="qa_sample", rule="qa-sample")  # fmt: skip
    decided(at(10, 11), "C5", "rev.alice", "override", adverse=True, seconds=10)

    received(at(11), "C6", system=s, subject="S6", version="v2", region="south", adverse=True)
    put(at(13), "case.overdue", system=s, case="C6", actor=Actor.workbench(), to="supervisor")
    decided(at(14, 10), "C6", "rev.bob", "agree", adverse=True, seconds=40)
    return system


def decided(moment, ref, username, verdict, *, adverse, seconds, system="claims-ai", **extra):
    put(moment, "case.decided", system=system, case=ref, actor=user(username),
        verdict=verdict, adverse=adverse, seconds=seconds, **extra)  # fmt: skip


def support_trail() -> AISystem:
    """support-bot, 2 to 15 Nov 2026 (threshold: a person within 60 minutes):

    case  version subject sentiment  what happens
    K1    7  U1  -0.8  2 Nov 10:00 routed for distress; read by comp.dana 10:05
                       (not care); claimed by rev.alice 10:30 (30 min); decided 10:40;
                       feedback 4/5
    K2    7  U2  -0.6  3 Nov 10:00 routed for distress; claimed 12:00 (120 min); decided
    K3    7  U3  +0.5  4 Nov 10:00 finalized by the AI; contested 5 Nov 10:00, claimed
                       10:10 (10 min), decided 10:20; feedback 3/3
    K4    8  U4  +0.2  10 Nov routed for distress; nobody by the end (waited > 60 min)
    K5    8  U5  -0.9  15 Nov 23:30 routed for distress; nobody yet (30 min at the end)
    K6    8  U1   0.0  11 Nov finalized by the AI (U1 is back); feedback 5/5 (ai)
    """
    s = "support-bot"
    system = system_made(s, "chatbot_answer")
    distress = {"queue": "chat-escalations", "distressed": True, "rule": "distressed-customer"}
    finalized = {"status": "finalized", "reason": "default", "rule": None, "queue": None}

    received(at(2, 10), "K1", system=s, subject="U1", version="7", sentiment=-0.8, **distress)
    put(at(2, 10, 5), "case.viewed", system=s, case="K1", actor=user("comp.dana"))
    put(at(2, 10, 30), "case.claimed", system=s, case="K1", actor=user("rev.alice"))
    decided(at(2, 10, 40), "K1", "rev.alice", "agree", adverse=False, seconds=60, system=s)
    feedback(at(3), "K1", system=s, subject="U1", listened=4, explained=5, decided_by="human")

    received(at(3, 10), "K2", system=s, subject="U2", version="7", sentiment=-0.6, **distress)
    put(at(3, 12), "case.claimed", system=s, case="K2", actor=user("rev.bob"))
    decided(at(3, 12, 10), "K2", "rev.bob", "agree", adverse=False, seconds=60, system=s)

    received(at(4, 10), "K3", system=s, subject="U3", version="7", sentiment=0.5, **finalized)
    put(at(5, 10), "case.contested", system=s, case="K3", queue="chat-escalations")
    put(at(5, 10, 10), "case.claimed", system=s, case="K3", actor=user("rev.bob"))
    decided(at(5, 10, 20), "K3", "rev.bob", "agree", adverse=False, seconds=60, system=s)
    feedback(at(6), "K3", system=s, subject="U3", listened=3, explained=3, decided_by="human")

    received(at(10, 10), "K4", system=s, subject="U4", version="8", sentiment=0.2, **distress)
    received(at(15, 23, 30), "K5", system=s, subject="U5", version="8", sentiment=-0.9,
             **distress)  # fmt: skip

    received(at(11, 10), "K6", system=s, subject="U1", version="8", sentiment=0.0, **finalized)
    feedback(at(12), "K6", system=s, subject="U1", listened=5, explained=5, decided_by="ai")
    return system

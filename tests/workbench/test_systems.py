"""AI systems' services: edits, the kill switch, secrets (workbench/services/systems.py)."""

import hashlib
import json

import pytest

from tests import factories
from workbench.errors import Invalid
from workbench.models import AISystem, SystemSwitch, TrailEvent
from workbench.services import Actor, ai_system_set_stopped, ai_system_update

OPS = Actor("user", "ops.maria")


def events(action):
    return [json.loads(e.body) for e in TrailEvent.objects.filter(action=action).order_by("seq")]


def test_an_update_records_one_event_with_the_fields_changed(system):
    ai_system_update(
        system=system,
        actor=OPS,
        name="Claims triage",
        intended_purpose="Triage",
        webhook_topics=["appeal.filed", "case.routed"],
    )
    [event] = events("system.changed")
    assert event["actor"] == {"type": "user", "id": "ops.maria"}
    assert event["data"] == {
        "changed": ["intended_purpose", "name", "webhook_topics"],
        "name": "Claims triage",
        "intended_purpose_sha256": hashlib.sha256(b"Triage").hexdigest(),
        "webhook_topics": ["case.routed", "appeal.filed"],  # in the canonical order
    }
    ai_system_update(system=system, actor=OPS, name="Claims triage")  # the same: no event
    assert len(events("system.changed")) == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"name": "  "}, "bad_name"),
        ({"name": "x" * 201}, "bad_name"),
        ({"webhook_topics": ["case.exploded"]}, "bad_webhook_topics"),
        ({"webhook_topics": "case.routed"}, "bad_webhook_topics"),
        ({"callback_url": "ftp://example.org/"}, "bad_callback_url"),
    ],
)
def test_a_bad_update_is_refused_whole(system, changes, code):
    with pytest.raises(Invalid) as refused:
        ai_system_update(system=system, actor=OPS, intended_purpose="changed too", **changes)
    assert refused.value.code == code
    system.refresh_from_db()
    assert system.intended_purpose == "" and not events("system.changed")


def test_the_kill_switch_keeps_every_reason_as_written(system):
    ai_system_set_stopped(system=system, stopped=True, reason="  Drift alarm  ", actor=OPS)
    again = ai_system_set_stopped(system=system, stopped=True, reason="twice", actor=OPS)
    assert again.stopped and again.switch_reason == "Drift alarm"  # nothing changed
    ai_system_set_stopped(system=system, stopped=False, reason="Retrained", actor=OPS)
    switches = SystemSwitch.objects.order_by("at", "pk")
    assert [(s.stopped, s.reason, s.actor_id) for s in switches] == [
        (True, "Drift alarm", "ops.maria"),
        (False, "Retrained", "ops.maria"),
    ]
    [stopped] = events("system.stopped")
    assert stopped["data"] == {"reason_sha256": hashlib.sha256(b"Drift alarm").hexdigest()}
    assert len(events("system.restarted")) == 1


@pytest.mark.parametrize(
    ("reason", "code"), [("", "reason_required"), ("x" * 2001, "reason_too_long")]
)
def test_the_kill_switch_refuses_a_missing_or_huge_reason(system, reason, code):
    with pytest.raises(Invalid) as refused:
        ai_system_set_stopped(system=system, stopped=True, reason=reason, actor=factories.ACTOR)
    assert refused.value.code == code
    assert not AISystem.objects.get(pk=system.pk).stopped
    assert not SystemSwitch.objects.exists()

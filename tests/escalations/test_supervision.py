"""A supervisor's hand on review tasks (escalations.services.supervision)."""

import pytest

from escalations.services.supervision import task_reassign, task_release_by_supervisor
from reviews.services.assignment import task_claim_next, task_release
from tests import factories
from workbench.models import TrailEvent


def test_a_supervisor_reassigns_and_releases(system):
    reviewer = factories.UserFactory(role="reviewer")
    supervisor = factories.UserFactory(role="supervisor")
    other = factories.UserFactory(role="reviewer")
    factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=reviewer)
    moved = task_reassign(task_id=task.pk, to_user=other, by=supervisor)
    assert moved.assignee == other and moved.fencing_token == 2
    with pytest.raises(Exception) as caught:  # the first reviewer's form is now stale
        task_release(task_id=task.pk, user=reviewer, fencing_token=1)
    assert caught.value.code == "not_your_task"
    with pytest.raises(Exception) as caught:
        task_reassign(task_id=task.pk, to_user=supervisor, by=supervisor)
    assert caught.value.code == "wrong_role"
    released = task_release_by_supervisor(task_id=task.pk, by=supervisor)
    assert (released.status, released.assignee) == ("open", None)
    actions = list(TrailEvent.objects.values_list("action", flat=True).order_by("seq"))[-3:]
    assert actions == ["case.claimed", "case.reassigned", "case.released"]

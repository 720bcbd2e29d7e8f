import json
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from reviews.models import Policy, Queue
from tests import factories
from workbench.models import TrailEvent
from workbench.services import ai_system_create


@pytest.fixture
def claims_ai(db):
    return ai_system_create(
        slug="claims-ai", name="Claims", kind="claim_decision", actor=factories.ACTOR
    )


def load(path) -> str:
    out = StringIO()
    call_command("load_policy", str(path), stdout=out)
    return out.getvalue()


def test_load_policy_from_yaml_publishes_version_one_with_its_queues(claims_ai, tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(factories.CLAIMS_POLICY))
    assert "published claims-ai policy version 1" in load(path)
    assert set(Queue.objects.values_list("slug", flat=True)) == {
        "claims-review",
        "senior-review",
        "supervisor",
        "appeals",
    }
    assert Queue.objects.get(slug="senior-review").reviews_required == 2
    event = json.loads(TrailEvent.objects.get(action="policy.published").body)
    assert event["data"]["version"] == 1 and event["data"]["rules"][0] == "large-amount"


def test_republishing_the_same_policy_changes_nothing(claims_ai, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(factories.CLAIMS_POLICY))
    load(path)
    assert "unchanged" in load(path)
    assert Policy.objects.count() == 1


def test_a_changed_policy_gets_the_next_version_and_updates_queues(claims_ai, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(factories.CLAIMS_POLICY))
    load(path)
    changed = {**factories.CLAIMS_POLICY, "qa_sample_rate": 0.1}
    changed["queues"] = [{"slug": "claims-review", "name": "Claims review", "sla_hours": 12}]
    path.write_text(json.dumps(changed))
    assert "version 2" in load(path)
    assert Queue.objects.get(slug="claims-review").sla_hours == 12
    assert TrailEvent.objects.filter(action="queue.updated").count() == 1
    assert list(Policy.objects.values_list("version", flat=True)) == [2, 1]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("system: claims-ai\nrules: [", "not valid YAML"),
        (
            yaml.safe_dump({**factories.CLAIMS_POLICY, "default_queue": "ghost"}),
            "unknown queue 'ghost'",
        ),
        (yaml.safe_dump({**factories.CLAIMS_POLICY, "system": "nobody"}), "no AI system 'nobody'"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_an_invalid_policy_file_is_refused_with_a_clear_message(
    claims_ai, tmp_path, content, named
):
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=named.replace("(", r"\(")):
        load(path)
    assert Policy.objects.count() == 0 and Queue.objects.count() == 0


def test_a_missing_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        load(tmp_path / "missing.yaml")

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from reviews.models import Case, Policy, Queue, ReasonCode, ReviewTask
from reviews.routing import PolicyInvalid
from reviews.selectors import policy_active
from reviews.services import policy_dry_run, policy_publish
from reviews.services.policies import AUTO_FINALIZED
from tests import factories
from tests.factories import ACTOR
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


# --- A policy written as DESIGN §4 shows (contract) ------------------------------------------

SECTION_4 = Path(__file__).parent / "policies" / "design-section-4.yaml"
# The queues the example's rules name, and an appeal queue, declared as §5a allows.
SECTION_4_QUEUES = [
    {"slug": "claims-review", "name": "Claims review", "sla_hours": 48},
    {"slug": "senior-review", "name": "Senior review", "reviews_required": 2, "blind": True},
    {"slug": "chat-escalations", "name": "Chat escalations", "sla_hours": 4},
    {"slug": "claims-appeals", "name": "Claims appeals", "role": "appeal_reviewer"},
]


def section_4(**changes) -> dict:
    document = yaml.safe_load(SECTION_4.read_text())
    document.update(changes)
    return document


def test_the_design_example_loads_verbatim_with_the_queues_it_names(claims_ai, tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(SECTION_4.read_text() + yaml.safe_dump({"queues": SECTION_4_QUEUES}))

    assert "published claims-ai policy version 1" in load(path)

    document = policy_active(system=claims_ai).document
    assert document["outcomes"] is None  # any outcome string is accepted
    assert document["default_queue"] == "claims-review"  # the first rule's queue
    assert document["appeal_queue"] == "claims-appeals"  # its own appeal_reviewer queue
    assert document["escalation_queue"] == "supervisors"  # made for it
    assert set(claims_ai.queues.values_list("slug", "role")) == {
        ("claims-review", "reviewer"),
        ("senior-review", "reviewer"),
        ("chat-escalations", "reviewer"),
        ("claims-appeals", "appeal_reviewer"),
        ("supervisors", "supervisor"),
    }


def test_without_an_outcomes_list_any_outcome_is_taken_and_routed(claims_ai):
    policy_publish(document=section_4(queues=SECTION_4_QUEUES), actor=factories.ACTOR)
    payload = factories.claim_payload(1)
    payload["output"]["outcome"] = "pend-for-documents"

    case = factories.ingest(claims_ai, payload)

    assert case.outcome == "pend-for-documents"
    assert case.status == Case.Status.PENDING_REVIEW  # low-confidence (0.62)
    assert case.tasks.get().queue.slug == "claims-review"


def test_with_an_outcomes_list_every_outcome_named_must_be_in_it(claims_ai):
    with pytest.raises(PolicyInvalid) as refused:
        policy_publish(
            document=section_4(queues=SECTION_4_QUEUES, outcomes=["approve", "deny"]),
            actor=factories.ACTOR,
        )
    assert refused.value.problems == [
        "adverse_outcomes: 'partial' is not one of the outcomes",
        "rules[0] (adverse-needs-human).when.outcome_in: 'partial' is not one of the outcomes",
    ]


def test_with_no_rule_qa_samples_go_to_the_first_reviewer_queue(claims_ai):
    queues = [
        {"slug": "appeals", "role": "appeal_reviewer"},
        {"slug": "second-look", "role": "reviewer"},
    ]
    document = section_4(rules=[], queues=queues)

    published = policy_publish(document=document, actor=factories.ACTOR)

    assert published.policy.document["default_queue"] == "second-look"


def test_with_no_rule_and_no_reviewer_queue_the_default_queue_must_be_named(claims_ai):
    with pytest.raises(PolicyInvalid) as refused:
        policy_publish(document=section_4(rules=[]), actor=factories.ACTOR)
    assert refused.value.problems == [
        "default_queue: the policy has no rule and declares no reviewer queue; "
        "name the queue for QA samples, contests and a stopped system"
    ]
    assert not Queue.objects.exists() and not Policy.objects.exists()


def test_every_problem_is_named_with_its_path_and_nothing_is_published(claims_ai):
    document = section_4(
        queues=[*SECTION_4_QUEUES, {"slug": "claims-review"}],
        colour="blue",
        reason_codes=[
            {"code": "CO-50", "customer_text": "Not medically necessary."},
            {"code": "CO-50", "customer_text": "Twice."},
            {"code": "CO 97", "customer_text": "Bundled."},
            "CO-16",
        ],
    )
    document["rules"][0]["queue"] = "nowhere"

    with pytest.raises(PolicyInvalid) as refused:
        policy_publish(document=document, actor=factories.ACTOR)

    assert refused.value.problems == [
        "unknown top-level field 'colour'",
        "reason_codes[1].code: 'CO-50' is listed already at reason_codes[0]",
        "reason_codes[2].code: must not contain spaces",
        "reason_codes[3]: must be a mapping with code, description, customer_text",
        "queues[4].slug: 'claims-review' is declared twice",
        "rules[0] (adverse-needs-human).queue: unknown queue 'nowhere'",
    ]
    assert not Queue.objects.exists() and not Policy.objects.exists()
    assert not TrailEvent.objects.filter(action__startswith="queue.").exists()


def test_a_policy_carries_its_reason_codes_into_the_catalog(claims_ai):
    codes = [
        {"code": "CO-50", "description": "Not medically necessary", "customer_text": "We ..."},
        {"code": "CO-97", "customer_text": "This service is paid as part of another one."},
    ]
    policy_publish(document=section_4(queues=SECTION_4_QUEUES, reason_codes=codes), actor=ACTOR)

    rows = {rc.code: rc for rc in ReasonCode.objects.filter(system=claims_ai)}
    assert set(rows) == {"CO-50", "CO-97"}
    assert rows["CO-97"].description == rows["CO-97"].customer_text  # described by its wording
    loaded = TrailEvent.objects.filter(action="system.reason_codes_loaded")
    assert loaded.count() == 1

    # A later version without CO-97 deactivates it; publishing it again changes nothing.
    later = section_4(queues=SECTION_4_QUEUES, reason_codes=codes[:1], qa_sample_rate=0.1)
    policy_publish(document=later, actor=ACTOR)
    policy_publish(document=later, actor=ACTOR)
    assert not ReasonCode.objects.get(system=claims_ai, code="CO-97").active
    assert loaded.count() == 2


# --- Queues belong to their AI system -----------------------------------------------------------


def test_two_systems_each_have_their_own_queue_of_the_same_slug(db):
    claims = factories.system_with_policy()
    shop = ai_system_create(slug="shop-bot", name="Shop", kind="chatbot_answer", actor=ACTOR)
    shop_policy = {
        **factories.SUPPORT_POLICY,
        "system": "shop-bot",
        # The same slug as claims-ai's queue, with other settings.
        "queues": [{"slug": "claims-review", "name": "Shop reviews", "sla_hours": 2}],
        "rules": [
            {"name": "low", "when": {"confidence_below": 0.95}, "queue": "claims-review"},
        ],
        "default_queue": "claims-review",
    }

    policy_publish(document=shop_policy, actor=ACTOR)

    ours, theirs = (Queue.objects.get(system=s, slug="claims-review") for s in (claims, shop))
    assert ours.pk != theirs.pk
    assert (ours.name, ours.sla_hours) == ("Claims review", 48)  # untouched by shop-bot
    assert (theirs.name, theirs.sla_hours) == ("Shop reviews", 2)
    created = TrailEvent.objects.filter(action="queue.created", system="shop-bot")
    assert {json.loads(e.body)["data"]["queue"] for e in created} == {
        "claims-review",
        "supervisors",
    }

    chat = factories.ingest(shop, factories.chat_payload(1))
    claim = factories.ingest(claims, factories.claim_payload(1))
    assert chat.tasks.get().queue == theirs
    assert claim.tasks.get().queue == ours


def test_a_policy_cannot_name_another_systems_queue(db):
    factories.system_with_policy()  # claims-ai, with its senior-review queue
    ai_system_create(slug="shop-bot", name="Shop", kind="chatbot_answer", actor=ACTOR)
    document = {
        **factories.SUPPORT_POLICY,
        "system": "shop-bot",
        "queues": [],
        "rules": [{"name": "r", "when": {"confidence_below": 0.5}, "queue": "senior-review"}],
        "default_queue": "senior-review",
    }

    with pytest.raises(PolicyInvalid) as refused:
        policy_publish(document=document, actor=ACTOR)

    assert refused.value.problems == [
        "rules[0] (r).queue: unknown queue 'senior-review'",
        "default_queue: unknown queue 'senior-review'",
    ]


# --- The dry run ---------------------------------------------------------------------------------


def counts() -> tuple:
    return (
        Case.objects.count(),
        ReviewTask.objects.count(),
        TrailEvent.objects.count(),
        Policy.objects.count(),
        Queue.objects.count(),
    )


def test_a_dry_run_counts_where_the_latest_cases_would_go_and_writes_nothing(system):
    for n in range(6):
        amount = 9000 if n < 2 else 100
        payload = factories.claim_payload(n, confidence=0.95, metadata={"amount": amount})
        payload["output"]["outcome"] = "approve"
        factories.ingest(system, payload)
    proposed = {
        **factories.CLAIMS_POLICY,
        # Large claims no longer need two people; every approval gets one.
        "rules": [{"name": "all", "when": {"outcome_in": ["approve"]}, "queue": "claims-review"}],
    }
    before = counts()

    dry_run = policy_dry_run(document=proposed)

    assert counts() == before
    assert dry_run.current_version == 1 and dry_run.cases == 6
    rows = {row.destination: (row.current, row.proposed) for row in dry_run.rows}
    auto = (6 - 2 - sum(1 for c in Case.objects.all() if c.route["reason"] == "qa_sample"), 0)
    assert rows["senior-review"] == (2, 0)
    assert rows["claims-review"][1] == 6
    assert rows[AUTO_FINALIZED] == auto
    assert dry_run.changed == 6 - rows["claims-review"][0]


def test_a_dry_run_of_an_invalid_policy_names_its_problems(system):
    with pytest.raises(PolicyInvalid):
        policy_dry_run(document={**factories.CLAIMS_POLICY, "rules": [{"name": "x"}]})


def test_a_queue_sets_its_hold_limit_and_release_cooldown(claims_ai):
    queues = [dict(SECTION_4_QUEUES[0], hold_limit=3, release_cooldown_minutes=0)]
    policy_publish(document=section_4(queues=[*queues, *SECTION_4_QUEUES[1:]]), actor=ACTOR)
    queue = Queue.objects.get(slug=SECTION_4_QUEUES[0]["slug"])
    assert (queue.hold_limit, queue.release_cooldown_minutes) == (3, 0)
    other = Queue.objects.get(slug=SECTION_4_QUEUES[1]["slug"])
    assert (other.hold_limit, other.release_cooldown_minutes) == (1, 30)


@pytest.mark.parametrize(
    ("field", "value"),
    [("hold_limit", 0), ("hold_limit", 101), ("release_cooldown_minutes", -1), ("hold_limit", "2")],
)
def test_a_bad_hold_limit_or_cooldown_is_refused(claims_ai, field, value):
    queues = [dict(SECTION_4_QUEUES[0], **{field: value}), *SECTION_4_QUEUES[1:]]
    with pytest.raises(PolicyInvalid) as refused:
        policy_publish(document=section_4(queues=queues), actor=ACTOR)
    assert any(problem.startswith(f"queues[0].{field}:") for problem in refused.value.problems)
    assert not Queue.objects.exists()

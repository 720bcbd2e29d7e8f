"""The routing engine on its own: no database."""

import copy
import json

import pytest

from reviews.routing import (
    Facts,
    PolicyInvalid,
    policy_validate,
    qa_sampled,
    route_evaluate,
    sentiment_score,
)
from tests import factories

ROLES = {"reviewer", "appeal_reviewer", "supervisor", "compliance", "admin"}
QUEUES = {
    "claims-review": "reviewer",
    "senior-review": "reviewer",
    "chat-escalations": "reviewer",
    "supervisor": "supervisor",
}


def validated(document=None, **changes):
    document = copy.deepcopy(document or factories.CLAIMS_POLICY)
    document.update(changes)
    return policy_validate(document, existing_queues=QUEUES, roles=ROLES)


def facts(**overrides):
    values = {
        "kind": "claim_decision",
        "input": {},
        "output": {"outcome": "approve"},
        "confidence": 0.95,
        "metadata": {"amount": 100},
        "model": {"name": "m", "version": "1"},
    }
    values.update(overrides)
    return Facts(**values)


def route(policy, stopped=False, external_id="CLM-1", **fact_overrides):
    return route_evaluate(
        policy, version=3, facts=facts(**fact_overrides), external_id=external_id, stopped=stopped
    )


def problems_of(**changes) -> str:
    with pytest.raises(PolicyInvalid) as caught:
        validated(**changes)
    return "\n".join(caught.value.problems)


def test_first_match_wins_but_every_rule_is_recorded():
    policy = validated(qa_sample_rate=0)
    result = route(policy, output={"outcome": "deny"}, confidence=0.5, metadata={"amount": 9000})
    assert (result.rule, result.queue, result.priority) == ("large-amount", "senior-review", 5)
    assert [(r["rule"], r["matched"]) for r in result.conditions] == [
        ("large-amount", True),
        ("adverse-needs-human", True),
        ("low-confidence", True),
    ]
    assert result.as_dict()["policy_version"] == 3


def test_nothing_matching_is_finalized_automatically():
    result = route(validated(qa_sample_rate=0))
    assert not result.needs_human
    assert (result.reason, result.rule, result.queue) == ("default", None, None)
    assert all(not r["matched"] for r in result.conditions)


def test_a_stopped_system_sends_everything_to_a_person():
    result = route(validated(qa_sample_rate=0), stopped=True)
    assert result.needs_human and result.rule == "kill-switch" and result.queue == "claims-review"


def test_qa_sampling_is_deterministic_and_near_its_rate():
    picked = [qa_sampled(system="claims-ai", external_id=f"C-{n}", rate=0.05) for n in range(4000)]
    assert picked == [
        qa_sampled(system="claims-ai", external_id=f"C-{n}", rate=0.05) for n in range(4000)
    ]
    assert 0.035 < sum(picked) / len(picked) < 0.065
    sampled_id = f"C-{picked.index(True)}"
    result = route(validated(qa_sample_rate=0.05), external_id=sampled_id)
    assert (result.reason, result.task_kind, result.queue) == ("qa_sample", "qa", "claims-review")


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", "north", "north", True),
        ("ne", "north", "south", True),
        ("gt", 5000, 5000.01, True),
        ("gt", 5000, 5000, False),
        ("ge", 5000, 5000, True),
        ("lt", 10, 9, True),
        ("le", 10, 11, False),
        ("in", ["north", "east"], "east", True),
        ("contains", "urgent", "very urgent case", True),
        ("contains", "x", ["x", "y"], True),
        ("gt", 5, "not a number", False),
    ],
)
def test_field_operators(op, value, actual, expected):
    policy = validated(
        rules=[
            {
                "name": "r",
                "when": {"field": "metadata.v", "op": op, "value": value},
                "queue": "claims-review",
            }
        ],
        qa_sample_rate=0,
    )
    assert route(policy, metadata={"v": actual}).needs_human is expected


def test_exists_and_paths_into_lists():
    policy = validated(
        rules=[
            {
                "name": "r",
                "when": {
                    "all": [
                        {"field": "metadata.flag", "op": "exists"},
                        {"field": "input.lines.0.amount", "op": "ge", "value": 100},
                        {"not": {"field": "metadata.missing", "op": "exists"}},
                    ]
                },
                "queue": "claims-review",
            }
        ],
        qa_sample_rate=0,
    )
    hit = route(policy, metadata={"flag": None}, input={"lines": [{"amount": 120}]})
    assert hit.needs_human
    tree = hit.conditions[0]["when"]
    assert tree["result"] is True and [part["result"] for part in tree["all"]] == [True, True, True]
    assert not route(policy, metadata={}, input={"lines": [{"amount": 120}]}).needs_human


def test_combinators_record_every_leaf_without_short_circuit():
    policy = validated(factories.SUPPORT_POLICY)
    turn = [{"role": "customer", "text": "Can I talk to a human please"}]
    result = route(
        policy, kind="chatbot_answer", input={"conversation": turn}, output={"outcome": "answered"}
    )
    assert result.rule == "distressed-customer"
    sentiment, pattern = result.conditions[0]["when"]["any"]
    assert sentiment["result"] is False and isinstance(sentiment["score"], float)
    assert pattern["result"] is True


def test_text_rules_read_the_latest_customer_turn():
    policy = validated(factories.SUPPORT_POLICY)
    conversation = [
        {"role": "customer", "text": "I want a human agent"},
        {"role": "assistant", "text": "Sure, a person will call"},
        {"role": "customer", "text": "Thanks, that solved it!"},
    ]
    result = route(
        policy,
        kind="chatbot_answer",
        input={"conversation": conversation},
        output={"outcome": "answered"},
    )
    assert not result.needs_human


def test_regexes_cannot_backtrack_catastrophically():
    policy = validated(
        factories.SUPPORT_POLICY,
        rules=[
            {"name": "evil", "when": {"text_matches": "(a+)+$"}, "queue": "chat-escalations"},
        ],
    )
    text = "a" * 15_000 + "!"
    result = route(
        policy, kind="chatbot_answer", input={"conversation": [{"role": "customer", "text": text}]}
    )
    assert not result.needs_human  # RE2 answers in linear time


def test_vader_agrees_with_people_on_clearly_negative_and_positive_texts():
    # Hutto & Gilbert's tweets, each rated -4..+4 by about 20 people.
    with open(factories.DATA / "emotion" / "vader_tweets_human_ratings.jsonl") as f:
        rows = [json.loads(line) for line in f]
    negative = [r["text"] for r in rows if r["mean_sentiment"] <= -2.5][:200]
    positive = [r["text"] for r in rows if r["mean_sentiment"] >= 2.5][:200]
    assert len(negative) > 50 and len(positive) > 50
    negative_hits = sum(sentiment_score(text) < -0.05 for text in negative) / len(negative)
    positive_hits = sum(sentiment_score(text) > 0.05 for text in positive) / len(positive)
    assert negative_hits > 0.8 and positive_hits > 0.8


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"default_queue": "nowhere"}, "default_queue: unknown queue 'nowhere'"),
        (
            {"rules": [{"name": "r", "when": {"outcome_in": ["deny"]}, "queue": "ghost"}]},
            "rules[0] (r).queue: unknown queue 'ghost'",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "when": {"field": "metadata.a", "op": "like", "value": 1},
                        "queue": "claims-review",
                    }
                ]
            },
            "unknown operator 'like'",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "when": {"field": "metadata.a", "op": "gt", "value": "x"},
                        "queue": "claims-review",
                    }
                ]
            },
            "gt compares numbers",
        ),
        ({"appeal_window_days": 90}, "appeal_window_days: must be a whole number of at least 184"),
        (
            {
                "rules": [
                    {"name": "r", "when": {"text_matches": "(a)\\1"}, "queue": "claims-review"}
                ]
            },
            "not a valid (RE2) regular expression",
        ),
        (
            {
                "rules": [
                    {"name": "r", "when": {"text_matches": "a" * 501}, "queue": "claims-review"}
                ]
            },
            "longer than 500 characters",
        ),
        (
            {"rules": [{"name": "r", "when": {"outcome_in": ["maybe"]}, "queue": "claims-review"}]},
            "'maybe' is not one of the outcomes",
        ),
        (
            {"rules": [{"name": "r", "when": {"confidence_below": 2}, "queue": "claims-review"}]},
            "confidence_below: must be a number from 0 to 1",
        ),
        (
            {"rules": [{"name": "r", "when": {"guess": 1}, "queue": "claims-review"}]},
            "unknown test 'guess'",
        ),
        (
            {"rules": [{"name": "r", "when": {"any": []}, "queue": "claims-review"}]},
            "must be a non-empty list",
        ),
        (
            {
                "rules": [
                    {"name": "r", "when": {"outcome_in": ["deny"]}, "queue": "claims-review"},
                    {"name": "r", "when": {"outcome_in": ["deny"]}, "queue": "claims-review"},
                ]
            },
            "'r' is used twice",
        ),
        ({"qa_sample_rate": 1.5}, "qa_sample_rate"),
        ({"colour": "blue"}, "unknown top-level field 'colour'"),
        ({"queues": [{"slug": "q", "role": "wizard"}]}, "unknown role 'wizard'"),
        ({"queues": [{"slug": "q", "reviews_required": 3}]}, "reviews_required: must be 1 or 2"),
    ],
)
def test_invalid_policies_name_the_problem(changes, named):
    assert named in problems_of(**changes)


def test_every_problem_is_listed_at_once():
    problems = problems_of(default_queue="nowhere", appeal_window_days=10, qa_sample_rate=-1)
    assert problems.count("\n") == 2


def test_a_chat_route_carries_the_sentiment_and_whether_the_customer_was_distressed():
    policy = validated(factories.SUPPORT_POLICY)
    chat = {"kind": "chatbot_answer", "output": {"outcome": "answered"}}
    upset = route(
        policy,
        input={"conversation": [{"role": "customer", "text": "This is awful, I hate it"}]},
        **chat,
    )
    text = "This is awful, I hate it"
    assert upset.rule == "distressed-customer" and upset.distressed
    assert upset.sentiment == sentiment_score(text) < -0.5
    calm = route(policy, input={"conversation": [{"role": "customer", "text": "Thanks!"}]}, **chat)
    assert calm.rule is None and not calm.distressed and calm.sentiment > 0
    # A rule that fires on confidence alone is not about the customer's words.
    low = route(
        policy,
        confidence=0.1,
        input={"conversation": [{"role": "customer", "text": "ok"}]},
        **chat,
    )
    assert low.rule == "low-confidence" and not low.distressed
    # Claims have no conversation: no sentiment.
    assert route(validated()).sentiment is None


@pytest.mark.parametrize(
    ("when", "reads"),
    [
        ({"sentiment_below": -0.5}, True),
        ({"all": [{"confidence_below": 0.9}, {"not": {"text_matches": "(?i)thanks"}}]}, True),
        ({"any": [{"outcome_in": ["deny"]}, {"field": "metadata.x", "op": "exists"}]}, False),
        ({"not": {"confidence_below": 0.5}}, False),
    ],
)
def test_a_rule_reads_the_customers_words_anywhere_in_its_tree(when, reads):
    from reviews.routing.evaluation import reads_customer_words

    assert reads_customer_words(when) is reads


def test_the_audit_thresholds_are_optional_with_defaults_and_checked():
    from workbench.metrics.thresholds import audit_defaults

    assert validated()["audit"] == audit_defaults()  # a §4 policy without audit: loads
    assert validated(audit={"overturn_rate": 0.3})["audit"]["overturn_rate"] == 0.3
    assert "audit: unknown threshold 'speed'" in problems_of(audit={"speed": 1})
    assert "audit.qa_error_rate: a number from 0 to 1" in problems_of(audit={"qa_error_rate": 2})

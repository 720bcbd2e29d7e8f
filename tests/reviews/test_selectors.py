"""Reads of the reviewer's screens: what the Outcome and Reason selects offer,
and what a blind reviewer may see of the route and the trail."""

import copy

import pytest
from django.db import connection

from reviews.models import Case, ReasonCode
from reviews.selectors import (
    BLIND_VIEW,
    FULL_VIEW,
    OTHER_REASON,
    case_outcome_choices,
    case_reason_choices,
    case_timeline,
    choices,
    policy_active,
    route_explained,
)
from reviews.services import policy_publish
from tests import factories
from workbench.services.trail import Actor, trail_append

# --- The Reason select --------------------------------------------------------------------


def two_line_claim(system, n=1):
    payload = factories.claim_payload(n)
    payload["input"]["lines"].append(
        {"code": "97110", "description": "Therapy", "amount": 60, "reason_codes": ["N-130", 7]}
    )
    payload["output"]["reasons"] = [
        {"code": "CO-50", "text": "Not deemed a medical necessity"},
        {"code": "CO-16", "text": "Lacks information"},
    ]
    payload["input"]["lines"][0]["reason_codes"] = ["CO-16"]
    return factories.ingest(system, payload)


def test_without_a_catalog_the_reasons_are_the_ais_codes_and_other(system):
    case = two_line_claim(system)

    choices = case_reason_choices(case=case)

    assert choices.options == [
        ("CO-50", "CO-50 — Not deemed a medical necessity (given by the AI)"),
        ("CO-16", "CO-16 — Lacks information (given by the AI)"),
        ("N-130", "N-130 (given by the AI)"),
        ("7", "7 (given by the AI)"),
        (OTHER_REASON, "Other (explained in the rationale)"),
    ]
    assert choices.codes == {"CO-50", "CO-16", "N-130", "7", "other"}
    assert choices.catalog == {}


def test_the_catalog_comes_first_and_an_ai_code_it_holds_is_offered_once(system):
    factories.reason_code(system, "CO-97", "Included in another service")
    factories.reason_code(system, "CO-50", "Medical necessity (catalog)")
    retired = factories.reason_code(system, "N-130", "Retired remark")
    ReasonCode.objects.filter(pk=retired.pk).update(active=False)
    factories.reason_code(system, "ZZ-9", "Another retired one")
    ReasonCode.objects.filter(code="ZZ-9").update(active=False)
    case = two_line_claim(system)

    choices = case_reason_choices(case=case)

    assert [code for code, _ in choices.options] == [
        "CO-50",
        "CO-97",
        "CO-16",
        "N-130",
        "7",
        "other",
    ]
    labels = dict(choices.options)
    assert labels["CO-50"] == "CO-50 — Medical necessity (catalog)"
    # A retired catalog code the AI gave keeps its catalog wording; one the AI
    # did not give is no choice at all.
    assert labels["N-130"] == "N-130 — Retired remark (given by the AI)"
    assert "ZZ-9" not in labels
    assert set(choices.catalog) == {"CO-50", "CO-97", "N-130"}


def test_blind_the_reasons_are_the_catalog_and_other_only(system):
    factories.reason_code(system, "CO-97", "Included in another service")
    case = two_line_claim(system)

    choices = case_reason_choices(case=case, blind=True)

    assert choices.options == [
        ("CO-97", "CO-97 — Included in another service"),
        (OTHER_REASON, "Other (explained in the rationale)"),
    ]
    assert set(choices.catalog) == {"CO-97"}


def test_a_catalog_code_named_other_is_not_offered_twice(system):
    factories.reason_code(system, "other", "Something else")
    case = factories.ingest(system, factories.claim_payload(1))
    options = case_reason_choices(case=case).options
    assert [code for code, _ in options].count("other") == 1
    assert dict(options)["other"] == "other — Something else"


def test_the_reasons_are_read_in_one_query(system, django_assert_num_queries):
    factories.reason_code(system, "CO-97", "Included in another service")
    case = two_line_claim(system)
    with django_assert_num_queries(1):
        case_reason_choices(case=case)


# --- The Outcome select -------------------------------------------------------------------

UNLISTED = {
    "system": "claims-ai",
    "adverse_outcomes": ["deny", "pend"],
    "appeal_window_days": 184,
    "qa_sample_rate": 0,
    "outcome_wording": {"refer": "We passed your claim to a specialist."},
    "rules": [
        {
            "name": "odd",
            "when": {"not": {"any": [{"outcome_in": ["hold"]}, {"confidence_below": 0.1}]}},
            "queue": "claims-review",
        }
    ],
}


@pytest.fixture
def unlisted(system):
    """claims-ai under a policy that lists no ``outcomes`` (DESIGN §4: optional)."""
    policy_publish(document=copy.deepcopy(UNLISTED), actor=factories.ACTOR)
    assert policy_active(system=system).document["outcomes"] is None
    return system


def unlisted_case(system, n, outcome):
    return factories.ingest(system, factories.claim_payload(n, output={"outcome": outcome}))


def test_the_policys_outcomes_when_it_lists_them_in_its_order(system):
    case = factories.ingest(system, factories.claim_payload(1))
    assert case_outcome_choices(case=case) == ["approve", "deny", "partial"]
    assert case_outcome_choices(case=case, blind=True) == ["approve", "deny", "partial"]


def test_without_outcomes_the_policy_the_cases_and_the_kind_name_them(unlisted):
    first = unlisted_case(unlisted, 1, outcome="waive")
    case = unlisted_case(unlisted, 2, outcome="reprice")

    offered = case_outcome_choices(case=case)

    # The kind's usual ones, the policy's adverse outcomes, outcome_in tests
    # (however deep) and wording, and the outcomes of the system's cases.
    assert offered == sorted(
        {"approve", "partial", "deny", "pend", "hold", "refer", "waive", "reprice"}
    )
    assert [o for o in offered if o != case.outcome]  # always another to choose
    # Blind, this case's own outcome is left out (the list must not tell it);
    # another case's is still there.
    blind = case_outcome_choices(case=case, blind=True)
    assert "reprice" not in blind and first.outcome in blind


@pytest.mark.parametrize(
    ("kind", "usual"),
    [
        ("chatbot_answer", ["answered", "escalated", "refused"]),
        ("content_moderation", ["allow", "remove", "restrict"]),
        ("generic", []),
    ],
)
def test_the_kinds_usual_outcomes(unlisted, kind, usual):
    case = unlisted_case(unlisted, 1, outcome="deny")
    case.kind = kind
    offered = case_outcome_choices(case=case)
    assert set(usual) <= set(offered)
    assert "approve" not in offered  # the claims' usual, named by nothing here


def test_only_the_systems_latest_cases_are_read_in_one_query(
    unlisted, monkeypatch, django_assert_num_queries
):
    old = unlisted_case(unlisted, 1, outcome="antique")
    for n in range(2, 5):
        unlisted_case(unlisted, n, outcome=f"recent{n}")
    Case.objects.filter(pk=old.pk).update(created_at=old.created_at.replace(year=2020))
    other = factories.system_with_policy(copy.deepcopy(factories.SUPPORT_POLICY))
    factories.ingest(other, factories.chat_payload(1))  # another system's: never offered
    case = Case.objects.select_related("policy").get(external_id="CLM-2026-000004")
    monkeypatch.setattr(choices, "RECENT_CASES", 3)

    with django_assert_num_queries(1):
        offered = case_outcome_choices(case=case)

    assert {"recent2", "recent3", "recent4"} <= set(offered)
    assert "antique" not in offered and "answered" not in offered


@pytest.mark.postgres
def test_the_latest_cases_are_read_along_their_index(system):
    case = factories.ingest(system, factories.claim_payload(1))
    query = Case.objects.filter(system_id=case.system_id).order_by("-created_at")
    # A handful of rows: left alone, the planner may well scan them all. With
    # the other ways off, what is left is whether the index serves the query
    # as it is, in order (no sort), for one system.
    with connection.cursor() as cursor:
        for way in ("seqscan", "bitmapscan", "sort"):
            cursor.execute(f"SET LOCAL enable_{way} = off")
        plan = query.values_list("output__outcome", flat=True)[:1000].explain()
    assert "case_system_recent" in plan and "Sort" not in plan


# --- The route, blind ---------------------------------------------------------------------


def route(reason="rule", rule=None, *rules):
    return {
        "reason": reason,
        "rule": rule,
        "queue": "claims-review",
        "policy_version": 3,
        "conditions": [
            {"rule": name, "matched": matched, "when": when} for name, matched, when in rules
        ],
    }


AMOUNT = (
    "large-amount",
    False,
    {"field": "metadata.amount", "op": "gt", "value": 5000, "result": False},
)
DENIAL = ("adverse-needs-human", True, {"outcome_in": ["deny"], "result": True})
UPSET = (
    "upset",
    True,
    {
        "any": [
            {"sentiment_below": -0.5, "score": -0.7, "result": True},
            {"text_matches": "human", "result": False},
        ],
        "result": True,
    },
)
HIDDEN_TREES = [
    {"confidence_below": 0.8, "result": True},
    {"confidence_at_least": 0.8, "result": False},
    {"not": {"outcome_in": ["deny"], "result": True}, "result": False},
    {"all": [AMOUNT[2], {"outcome_in": ["deny"], "result": True}], "result": False},
    {"field": "output.summary", "op": "exists", "result": True},
    {"field": "confidence", "op": "lt", "value": 0.5, "result": False},
    {"field": "explanation", "op": "contains", "value": "x", "result": False},
    {"field": "input.lines.0.reason_codes", "op": "contains", "value": "CO-50", "result": True},
    {"some_future_test": 1, "result": True},
]


@pytest.mark.parametrize("tree", HIDDEN_TREES)
def test_blind_a_rule_with_any_test_of_the_ais_view_is_withheld_whole(tree):
    shown = route_explained(route=route("rule", "x", AMOUNT, ("x", True, tree)), blind=True)
    assert [r.rule for r in shown.rules] == ["large-amount"] and shown.withheld == 1
    seen = route_explained(route=route("rule", "x", AMOUNT, ("x", True, tree)), blind=False)
    assert [r.rule for r in seen.rules] == ["large-amount", "x"] and seen.withheld == 0


def test_blind_the_rule_that_routed_the_case_is_named_only_when_it_tells_nothing():
    # A test of the input, first: naming it says nothing of the rules after it.
    first = route_explained(route=route("rule", "upset", UPSET, DENIAL), blind=True)
    assert (first.reason, first.rule, first.disclosed) == ("rule", "upset", True)
    assert [(r.rule, r.fired, r.matched) for r in first.rules] == [("upset", True, True)]
    # After a withheld rule, it would say that the withheld one did not match.
    after = route_explained(route=route("rule", "upset", DENIAL, UPSET), blind=True)
    assert (after.reason, after.rule, after.disclosed) == ("", None, False)
    assert [(r.rule, r.fired, r.matched) for r in after.rules] == [("upset", False, True)]
    # The withheld rule itself routed it.
    withheld = route_explained(
        route=route("rule", "adverse-needs-human", AMOUNT, DENIAL), blind=True
    )
    assert (withheld.reason, withheld.rule) == ("", None)
    assert not any(r.fired for r in withheld.rules)


@pytest.mark.parametrize("reason", ["qa_sample", "default"])
def test_blind_no_match_is_withheld_when_a_rule_is(reason):
    """A QA sample means no rule matched, the outcome rule included."""
    assert route_explained(route=route(reason, None, AMOUNT, DENIAL), blind=True).reason == ""
    assert route_explained(route=route(reason, None, AMOUNT, UPSET), blind=True).reason == reason


def test_blind_a_stopped_system_is_said_whatever_the_rules():
    shown = route_explained(route=route("system_stopped", "kill-switch", DENIAL), blind=True)
    assert (shown.reason, shown.rule, shown.withheld) == ("system_stopped", "kill-switch", 1)


# --- The trail, blind ---------------------------------------------------------------------


def test_blind_the_trail_shows_only_the_listed_data(system):
    case = factories.ingest(system, factories.claim_payload(1))
    actor = Actor.workbench("tests")
    # A key nobody listed yet, on a known action and on a new one.
    trail_append(
        action="case.claimed",
        actor=actor,
        case=case.reference,
        system=system.slug,
        data={"task": 1, "queue": "claims-review", "hint": "zqhint"},
    )
    trail_append(
        action="case.pondered",
        actor=actor,
        case=case.reference,
        system=system.slug,
        data={"outcome": "deny"},
    )

    blind = {e.action: e for e in case_timeline(case=case, hide_reviews=False, blind=True)}
    seen = {e.action: e for e in case_timeline(case=case, hide_reviews=False, blind=False)}

    assert dict(blind["case.received"].details).keys() == {
        "external_id",
        "kind",
        "subject",
        "model",
    }
    assert {"outcome", "confidence", "reason_codes", "body_sha256"} <= dict(
        seen["case.received"].details
    ).keys()
    assert dict(blind["case.routed"].details).keys() == {"status", "queue", "policy_version"}
    assert dict(blind["case.claimed"].details) == {"task": "1", "queue": "claims-review"}
    assert blind["case.pondered"].details == [] and blind["case.pondered"].note
    assert dict(seen["case.pondered"].details) == {"outcome": "deny"}
    # The rule, when the route card may name it too.
    disclosed = case_timeline(case=case, hide_reviews=False, blind=True, route_disclosed=True)
    routed = next(e for e in disclosed if e.action == "case.routed")
    assert dict(routed.details).keys() == {"status", "queue", "policy_version", "reason", "rule"}


def test_the_visible_parts_blind_and_not():
    assert set(BLIND_VIEW) < set(FULL_VIEW)
    assert {"outcome", "confidence", "reasons", "adverse"}.isdisjoint(BLIND_VIEW)

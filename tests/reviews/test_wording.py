"""Texts written for the customer, per locale (issue 13 item 2): in the
policy (outcome wording, external review, each rule's customer text, ground
and explanation) and in the reason-code catalog."""

import copy

import pytest

from reviews.routing import PolicyInvalid, policy_validate
from reviews.wording import wording_for, wording_split
from tests import factories

ROLES = {"reviewer", "appeal_reviewer", "supervisor", "compliance", "admin"}

# DESIGN §4's policy, as written there (plus the queues it names).
SECTION_4 = {
    "system": "claims-ai",
    "adverse_outcomes": ["deny", "partial"],
    "appeal_window_days": 184,
    "qa_sample_rate": 0.05,
    "rules": [
        {
            "name": "adverse-needs-human",
            "when": {"outcome_in": ["deny", "partial"]},
            "queue": "claims-review",
        },
        {"name": "low-confidence", "when": {"confidence_below": 0.80}, "queue": "claims-review"},
    ],
}


def validated(document: dict) -> dict:
    return policy_validate(
        copy.deepcopy(document),
        existing_queues={"claims-review": "reviewer", "supervisor": "supervisor"},
        roles=ROLES,
    )


def problems(document: dict) -> list[str]:
    with pytest.raises(PolicyInvalid) as refused:
        validated(document)
    return refused.value.problems


def test_plain_text_is_the_policys_language_and_a_mapping_gives_each_locale():
    texts = {"en": "Approved.", "es": "Aprobada.", "pt-BR": "Aprovada."}
    assert wording_for("Approved.", "es") == "Approved."
    assert wording_for(texts, "es") == "Aprobada."
    assert wording_for(texts, "es-MX") == "Aprobada."  # the plain language of the locale
    assert wording_for(texts, "pt-BR") == "Aprovada."
    assert wording_for(texts, "fr") == "Approved."  # English only where French is missing
    assert wording_for({"es": "Aprobada.", "de": "Genehmigt."}, "fr", "es") == "Aprobada."
    assert wording_for({"de": "Genehmigt."}, "fr") == "Genehmigt."  # something rather than nothing
    assert wording_for(None, "en") == wording_for({}, "en") == ""
    assert wording_split({"es": "Aprobada.", "en": "Approved."}) == (
        "Approved.",
        {"es": "Aprobada."},
    )
    assert wording_split({"es": "Aprobada."}) == ("Aprobada.", {})


def test_the_claims_policy_of_design_section_4_still_loads_and_gets_the_defaults():
    document = validated(
        {**SECTION_4, "outcomes": ["approve", "deny", "partial"], "default_queue": "claims-review"}
    )
    assert document["default_locale"] == "en"
    assert document["outcome_wording"] == {} and document["external_review"] == ""


def test_every_customer_text_of_a_policy_may_be_given_per_locale():
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    policy["default_locale"] = "en"
    policy["outcome_wording"] = {"deny": {"en": "Denied.", "es": "Denegada."}, "approve": "Paid."}
    policy["external_review"] = {"en": "Ask the regulator.", "es": "Pregunte al regulador."}
    policy["rules"][1].update(
        customer_text={"en": "A person checks every denial.", "es": "Una persona revisa."},
        ground="Plan section 7.2.",
        explanation_customer={"en": "The procedure code.", "es": "El código."},
    )
    document = policy_validate(policy, existing_queues={}, roles=ROLES)
    assert document["rules"][1]["customer_text"]["es"] == "Una persona revisa."


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"default_locale": "español"}, "default_locale"),
        ({"outcome_wording": {"deny": {"english": "Denied."}}}, "'english' is not a locale"),
        ({"outcome_wording": {"deny": {"es": 3}}}, "outcome_wording.deny.es: must be text"),
        ({"outcome_wording": {"deny": {}}}, "outcome_wording.deny: give text"),
        ({"outcome_wording": {"deny": "<b>Denied</b>"}}, "without markup"),
        ({"external_review": {"es": "a\x00b"}}, "external_review.es: contains a control"),
        ({"external_review": ["a list"]}, "external_review: must be text"),
        ({"rules[1].customer_text": "x" * 5001}, "at most 5,000"),
        ({"rules[1].ground": {"es-": "Ley"}}, "'es-' is not a locale"),
        ({"rules[1].explanation_customer": 7}, "explanation_customer: give text"),
        ({"rules[1].notes": "internal"}, "unknown field 'notes'"),
    ],
)
def test_a_bad_customer_text_is_refused_naming_where_it_is(change, named):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    ((key, value),) = change.items()
    if key.startswith("rules[1]."):
        policy["rules"][1][key.removeprefix("rules[1].")] = value
    else:
        policy[key] = value
    found = "\n".join(problems(policy))
    assert named in found, found

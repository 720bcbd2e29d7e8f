"""A new AI system from nothing, by DESIGN alone, in real headless Chromium.

The operator creates the system with ``create_ai_system`` and publishes the
§4 example policy verbatim with a ``queues:`` list declaring the queues its
rules name and one appeal queue; the system submits a case over HTTP; a
reviewer claims it with the keyboard and overrides it with a reason the AI
gave (the new system has no reason-code catalog); the signed webhook
arrives; the customer appeals from the notice link; an appeal reviewer
claims it from that system's own appeal queue (another system with an
appeals queue of its own stands beside it) and decides it. No demo data.
"""

import hashlib
import hmac
import json
import re
from io import StringIO

import requests
import yaml
from django.core.management import call_command
from playwright.sync_api import expect

from escalations.models import Appeal
from reviews.models import Case
from tests import factories
from tests.browser.test_reviewer_flow import log_in_to_my_queues, webhooks_received
from tests.reviews.test_policies import SECTION_4, SECTION_4_QUEUES
from workbench.models import AISystem, Role
from workbench.services import trail_verify

RATIONALE = "The treatment notes show the visit was needed; the denial code does not apply."
STATEMENT = "My doctor referred me; the letter is in my file."
REASONS = "We looked again and agree with the reviewer: the visit is covered."


def create_system(receiver) -> tuple[AISystem, str, str]:
    out = StringIO()
    call_command(
        "create_ai_system",
        "fresh-claims",
        "--name",
        "Fresh claims model",
        "--kind",
        "claim_decision",
        "--callback-url",
        receiver.url,
        stdout=out,
    )
    lines = out.getvalue().strip().splitlines()
    secret = re.fullmatch(r"callback_secret: (\S+)", lines[-2])[1]
    return AISystem.objects.get(slug="fresh-claims"), secret, lines[-1]


def test_a_new_system_works_end_to_end_by_the_design_alone(
    page,
    staff_page,
    live_server,
    receiver,
    outbox_worker,
    tmp_path,  # noqa: F811
):
    url = live_server.url
    receiver.status = 204
    factories.system_with_policy()  # claims-ai, with an "appeals" queue of its own
    system, secret, key = create_system(receiver)
    policy = yaml.safe_load(SECTION_4.read_text())
    assert set(policy) == {
        "system",
        "adverse_outcomes",
        "appeal_window_days",
        "qa_sample_rate",
        "rules",
    }
    policy["system"] = system.slug
    path = tmp_path / "fresh.yaml"
    path.write_text(yaml.safe_dump({**policy, "queues": SECTION_4_QUEUES}))
    call_command("load_policy", str(path), stdout=StringIO())

    reviewer = factories.UserFactory(username="rev.rita", role=Role.REVIEWER)
    appeals = factories.UserFactory(username="appeal.ann", role=Role.APPEAL_REVIEWER)

    # The AI system submits a denial over HTTP.
    payload = factories.claim_payload(1)
    payload["output"]["reasons"] = [{"code": "CO-50", "text": "Not deemed a medical necessity"}]
    answer = requests.post(
        f"{url}/api/v1/cases", json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["status"] == "pending_review"
    assert created["route"]["rule"] == "adverse-needs-human"
    assert created["route"]["queue"] == "claims-review"
    case = Case.objects.get(reference=created["reference"])
    assert case.tasks.get().queue.system == system

    # A reviewer claims it with the keyboard and overrides it with the AI's own code.
    log_in_to_my_queues(page, url, reviewer.username)
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/cases/{case.reference}/")
    page.keyboard.press("o")
    page.get_by_label("Outcome", exact=True).select_option("approve")
    page.get_by_label("Reason", exact=True).select_option("CO-50")
    page.get_by_label("Rationale", exact=True).fill(RATIONALE)
    page.get_by_role("button", name="Override", exact=True).click()
    page.wait_for_url(f"{url}/")
    expect(page.get_by_role("status")).to_contain_text(
        f"Decided {case.reference}: approve (overridden)."
    )

    # The webhook arrives, signed with the secret create_ai_system printed.
    [hook] = webhooks_received(receiver, count=1)
    signature = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Workbench-Signature"] == f"sha256={signature}"
    body = json.loads(hook.body)
    assert (body["reference"], body["outcome"], body["decided_by"]) == (
        case.reference,
        "approve",
        "human",
    )

    # The customer appeals from the notice link (any final decision can be appealed).
    customer = staff_page()
    customer.goto(created["notice_url"].replace("http://testserver", url))
    customer.get_by_label("Your statement").fill(STATEMENT)
    customer.get_by_role("button", name="File appeal").click()
    expect(customer.get_by_role("status")).to_contain_text("Your appeal was received")
    appeal = Appeal.objects.get(case=case)
    assert (appeal.task.queue.system, appeal.task.queue.slug) == (system, "claims-appeals")

    # An appeal reviewer of the system's own appeal queue decides it.
    ann = staff_page()
    log_in_to_my_queues(ann, url, appeals.username)
    ann.keyboard.press("n")
    ann.wait_for_url(f"{url}/appeals/{case.reference}/")
    ann.get_by_role("button", name="Open the customer's statement").click()
    expect(ann.locator("blockquote.statement")).to_have_text(STATEMENT)
    ann.get_by_label("Appeal outcome").select_option("upheld")
    ann.get_by_label("Reasons for the customer").fill(REASONS)
    ann.get_by_role("button", name="Decide appeal").click()
    ann.wait_for_url(f"{url}/")
    expect(ann.get_by_role("status")).to_contain_text(f"Appeal of {case.reference} decided")

    case.refresh_from_db()
    assert (case.status, case.final_outcome) == (Case.Status.APPEAL_DECIDED, "approve")
    hooks = webhooks_received(receiver, count=2)
    assert sorted(h.headers["X-Workbench-Topic"] for h in hooks) == [
        "case.appeal_decided",
        "case.finalized",
    ]
    assert trail_verify().ok

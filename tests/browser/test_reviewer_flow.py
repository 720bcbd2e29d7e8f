"""The reviewer's screens in real headless Chromium, against the live server:
log in, claim with the keyboard, override, and the signed webhook that tells
the AI system the final outcome."""

import copy
import hashlib
import hmac
import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from reviews.models import Case, Decision
from tests import factories
from workbench.services import trail_verify

PASSWORD = "pw-for-tests"
WEBHOOK_WAIT = 20  # seconds: a real worker on Redis picks the task up within one or two


def claims_system(receiver, policy: dict | None = None):
    """claims-ai, its webhook going to the test receiver (which answers 204),
    and the reason code CO-50."""
    receiver.status = 204
    system = factories.system_with_policy(policy)
    system.callback_url = receiver.url
    system.save(update_fields=["callback_url"])
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return system


@pytest.fixture
def claims(live_server, receiver):
    return claims_system(receiver)


@pytest.fixture
def reviewer(live_server):
    return factories.UserFactory(username="rev.alice", role="reviewer")


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_in_to_my_queues(page: Page, url: str, username: str) -> None:
    log_in(page, url, username)
    # Waits for the page's load event: workbench.js (deferred) is then
    # listening for the keyboard.
    page.wait_for_url(f"{url}/")
    expect(page.get_by_role("heading", name="My queues", level=1)).to_be_visible()


def claim_with_the_keyboard(page: Page, url: str, case: Case) -> None:
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/cases/{case.reference}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {case.reference}")


def queue_row(page: Page, name: str):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def webhooks_received(receiver, count: int = 1) -> list:
    """What the receiver got, once it has ``count`` requests (or the wait is
    over); then a moment longer, for a duplicate to show if there were one."""
    deadline = time.monotonic() + WEBHOOK_WAIT
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    return list(receiver.received)


def test_a_reviewer_overrides_with_the_keyboard_and_the_system_gets_a_signed_webhook(
    page, live_server, claims, reviewer, receiver, outbox_worker
):
    case = factories.ingest(claims, factories.claim_payload(1))
    assert case.status == Case.Status.PENDING_REVIEW and case.outcome == "deny"

    log_in_to_my_queues(page, live_server.url, reviewer.username)
    row = queue_row(page, "Claims review")
    expect(row.get_by_role("cell").first).to_have_text("1")  # Open

    claim_with_the_keyboard(page, live_server.url, case)
    page.keyboard.press("o")
    outcome = page.get_by_label("Outcome", exact=True)
    expect(outcome).to_be_focused()
    outcome.select_option("approve")
    page.get_by_label("Reason", exact=True).select_option("CO-50")
    page.get_by_label("Rationale", exact=True).fill(
        "The visit notes show the procedure was medically necessary."
    )
    page.get_by_role("button", name="Override", exact=True).click()

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text(
        f"Decided {case.reference}: approve (overridden)."
    )
    expect(row.get_by_role("cell").first).to_have_text("0")

    page.goto(f"{live_server.url}/cases/{case.reference}/")
    expect(page.locator(".case-head .badge")).to_have_text("Finalized")
    expect(page.locator(".case-head .alert")).to_have_text(
        "Final outcome approve, decided by human."
    )
    expect(page.get_by_role("button", name="Override")).to_have_count(0)

    case.refresh_from_db()
    assert (case.status, case.final_outcome, case.decided_by) == (
        Case.Status.FINALIZED,
        "approve",
        Case.DecidedBy.HUMAN,
    )
    [decision] = Decision.objects.filter(case=case)
    assert (decision.verdict, decision.outcome, decision.reason_code, decision.reviewer) == (
        "override",
        "approve",
        "CO-50",
        reviewer,
    )
    assert decision.ai_visible
    assert trail_verify().ok

    [hook] = webhooks_received(receiver)
    assert hook.method == "POST" and hook.path == "/hooks/workbench"
    body = json.loads(hook.body)
    assert (body["reference"], body["outcome"], body["verdict"]) == (
        case.reference,
        "approve",
        "override",
    )
    assert body["reasons"] == [{"code": "CO-50", "text": "Not deemed a medical necessity"}]
    claims.refresh_from_db()
    expected = hmac.new(claims.callback_secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Workbench-Signature"] == f"sha256={expected}"
    assert hook.headers["X-Workbench-Topic"] == "case.finalized"
    assert re.fullmatch(r"[0-9a-f-]{36}", hook.headers["X-Workbench-Delivery"])


def test_an_override_without_a_rationale_is_refused_next_to_the_field(
    page, live_server, claims, reviewer, receiver, outbox_worker
):
    case = factories.ingest(claims, factories.claim_payload(2))
    log_in_to_my_queues(page, live_server.url, reviewer.username)
    claim_with_the_keyboard(page, live_server.url, case)

    page.get_by_label("Outcome", exact=True).select_option("approve")
    page.get_by_label("Reason", exact=True).select_option("CO-50")
    page.get_by_role("button", name="Override", exact=True).click()

    rationale = page.get_by_label("Rationale", exact=True)
    expect(page.locator("#id_rationale_error")).to_have_text("a rationale is required to override")
    expect(rationale).to_have_attribute("aria-invalid", "true")
    expect(rationale).to_be_focused()  # workbench.js moves the focus to the field in error
    # The form is still there, with the reviewer's choice kept: they can fix it.
    expect(page.get_by_label("Outcome", exact=True)).to_have_value("approve")
    expect(page.get_by_label("Reason", exact=True)).to_have_value("CO-50")
    expect(page.locator('[aria-invalid="true"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Override", exact=True)).to_be_enabled()
    assert page.url == f"{live_server.url}/cases/{case.reference}/"

    case.refresh_from_db()
    assert case.status == Case.Status.IN_REVIEW
    assert not Decision.objects.filter(case=case).exists()
    assert webhooks_received(receiver, count=0) == []


def test_question_mark_opens_the_keyboard_help_and_escape_closes_it(page, live_server, reviewer):
    log_in_to_my_queues(page, live_server.url, reviewer.username)
    help_panel = page.locator("#keyhelp")
    toggle = page.get_by_role("button", name="Keyboard")
    expect(help_panel).to_be_hidden()

    page.keyboard.press("?")
    expect(help_panel.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    expect(help_panel).to_contain_text("Claim next")
    expect(toggle).to_have_attribute("aria-expanded", "true")

    page.keyboard.press("Escape")
    expect(help_panel).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")


def test_a_wrong_password_shows_an_error_and_logs_nobody_in(page, live_server, reviewer):
    log_in(page, live_server.url, reviewer.username, password="not-the-password")

    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password."
    )
    expect(page.get_by_label("Username")).to_have_value(reviewer.username)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert page.url == f"{live_server.url}/accounts/login/"


def test_in_a_blind_queue_the_reviewer_commits_before_seeing_the_ai(
    page, live_server, receiver, reviewer, outbox_worker
):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    policy["queues"][0]["blind"] = True  # claims-review
    system = claims_system(receiver, policy)
    case = factories.ingest(system, factories.claim_payload(3))

    log_in_to_my_queues(page, live_server.url, reviewer.username)
    expect(queue_row(page, "Claims review")).to_contain_text("blind")
    claim_with_the_keyboard(page, live_server.url, case)

    decision = page.locator("#decision")
    expect(page.get_by_text("the AI's outcome, confidence and reasons stay hidden")).to_be_visible()
    expect(page.locator(".badge.outcome")).to_have_count(0)  # the AI's "deny" is nowhere
    expect(page.get_by_role("button", name="Override", exact=True)).to_have_count(0)

    page.keyboard.press("o")
    expect(page.get_by_label("Outcome", exact=True)).to_be_focused()
    page.get_by_label("Outcome", exact=True).select_option("approve")
    page.get_by_role("button", name="Commit outcome").click()

    expect(decision).to_contain_text("Your outcome: approve")
    expect(decision).to_contain_text("The AI recommended: deny")
    page.get_by_label("Reason", exact=True).select_option("CO-50")
    page.get_by_label("Rationale", exact=True).fill("Necessity is documented in the notes.")
    page.get_by_role("button", name="Override", exact=True).click()

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text(
        f"Decided {case.reference}: approve (overridden)."
    )
    [record] = Decision.objects.filter(case=case)
    assert (record.verdict, record.outcome, record.ai_visible) == ("override", "approve", False)
    case.refresh_from_db()
    assert (case.status, case.final_outcome) == (Case.Status.FINALIZED, "approve")
    assert trail_verify().ok
    [hook] = webhooks_received(receiver)
    assert json.loads(hook.body)["outcome"] == "approve"


def test_a_blind_review_with_the_keyboard_shows_nothing_of_the_ai_until_the_commitment(
    page, live_server, receiver, reviewer, outbox_worker
):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    policy["queues"][0]["blind"] = True  # claims-review
    system = claims_system(receiver, policy)
    case = factories.ingest(system, factories.claim_payload(4))
    assert case.route["rule"] == "adverse-needs-human"
    summary, code = case.output["summary"], case.output["reasons"][0]["code"]

    log_in_to_my_queues(page, live_server.url, reviewer.username)
    claim_with_the_keyboard(page, live_server.url, case)

    # Before the commitment: not the outcome rule, the adverse flag, the
    # confidence, the AI's summary or reason code, anywhere on the page.
    text = page.locator("body").inner_text()
    for leak in ("adverse", "62%", "0.620", summary, code, "top features"):
        assert leak not in text, leak
    html = page.content()
    assert "adverse" not in html and code not in html
    expect(
        page.get_by_text("Why the policy sent it to a person is shown once you commit")
    ).to_be_visible()
    expect(page.get_by_label("Reason", exact=True).locator("option")).to_have_text(
        ["— none —", "CO-50 — Not deemed a medical necessity", "Other (explained in the rationale)"]
    )

    page.keyboard.press("o")
    outcome = page.get_by_label("Outcome", exact=True)
    expect(outcome).to_be_focused()
    expect(outcome).to_have_value("")  # nothing picked for the reviewer
    outcome.select_option("deny")
    page.keyboard.press("Escape")  # leave the field: the keys work again
    page.keyboard.press("a")  # commit

    decision = page.locator("#decision")
    expect(decision).to_contain_text("Your outcome: deny")
    expect(decision).to_contain_text("The AI recommended: deny with 62% confidence.")
    expect(page.get_by_role("button", name="Agree", exact=True)).to_be_visible()
    expect(page.get_by_text("adverse-needs-human").first).to_be_visible()  # shown now
    page.keyboard.press("a")  # agree

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text(
        f"Decided {case.reference}: deny (agreed with the AI)."
    )
    [record] = Decision.objects.filter(case=case)
    assert (record.verdict, record.outcome, record.ai_visible) == ("agree", "deny", False)
    assert trail_verify().ok
    [hook] = webhooks_received(receiver)
    assert json.loads(hook.body)["outcome"] == "deny"

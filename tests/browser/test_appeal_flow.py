"""An appeal from end to end in real headless Chromium, against the live server.

A customer opens the notice link of a decided denial, reads the reasons and
files an appeal with a PDF. The reviewer who made the decision cannot get the
appeal with **Claim next**, although she has the appeal reviewer role: she is
excluded, not merely unqualified. An independent appeal reviewer opens the
customer's statement (the decision appealed shows only then), overturns the
denial with reasons, and the customer's page shows the outcome. The AI system
gets one signed ``case.appeal_decided`` webhook; the customer one email when
the appeal is filed and one when it is decided; the trail still verifies.

Who delivers the outbox (``outbox_worker``): eager Celery in the live server's
thread on the SQLite run, a real worker thread on the PostgreSQL + Redis run.
Both are in this process, so the locmem ``mailoutbox`` holds the emails in both.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from escalations.models import Appeal
from reviews.models import Case
from reviews.services.notices import notice_token
from tests import factories
from tests.browser.test_reviewer_flow import (
    claims_system,
    log_in_to_my_queues,
    webhooks_received,
)
from workbench.models import OutboxMessage, Role
from workbench.services import trail_verify

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STATEMENT = "My doctor's letter shows the visit was medically necessary."
REASONS = "The letter from your doctor shows the visit was needed, so we pay the claim."
REASON_TEXT = "Not deemed a medical necessity"
DELIVERY_WAIT = 20  # seconds, as for webhooks: a real worker is quick, but not instant


def notice_link(url: str, case: Case) -> str:
    return f"{url}/notice/{notice_token(case.reference)}/"


def emails_sent(count: int) -> list[OutboxMessage]:
    """The email rows of the outbox, once ``count`` of them are sent (or the
    wait is over); then a moment longer, for a duplicate to show."""
    emails = OutboxMessage.objects.filter(channel=OutboxMessage.Channel.EMAIL)
    deadline = time.monotonic() + DELIVERY_WAIT
    while (
        emails.filter(status=OutboxMessage.Status.SENT).count() < count
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    return list(emails.order_by("pk"))


def test_a_customer_appeals_and_an_independent_reviewer_overturns_the_denial(
    page, staff_page, live_server, receiver, outbox_worker, mailoutbox
):
    url = live_server.url
    # Set up: the decision is alice's. She is an appeal reviewer too, so that
    # not getting the appeal proves she is excluded, not that she lacks a role.
    claims = claims_system(receiver)
    factories.reason_code(claims, "CO-50", REASON_TEXT)
    alice = factories.UserFactory(username="rev.alice", role=Role.REVIEWER)
    alice.groups.add(Group.objects.get_or_create(name=Role.APPEAL_REVIEWER)[0])
    carol = factories.UserFactory(username="appeal.carol", role=Role.APPEAL_REVIEWER)
    output = {
        "outcome": "deny",
        "summary": REASON_TEXT,
        "reasons": [{"code": "CO-50", "text": REASON_TEXT}],
    }
    case = factories.decided_case(claims, alice, 1, output=output)
    assert (case.status, case.final_outcome) == (Case.Status.FINALIZED, "deny")

    # The customer, not logged in, opens the link and reads the statement of reasons.
    page.goto(notice_link(url, case))
    expect(
        page.get_by_role("heading", name="Statement of reasons for our decision")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Why")).to_contain_text(REASON_TEXT)
    expect(page.get_by_text("Automated means were used")).to_be_visible()
    closes = timezone.localtime(case.finalized_at + timedelta(days=184))
    expect(page.get_by_role("region", name="How to appeal")).to_contain_text(
        f"until {closes:%-d %B %Y}"
    )

    page.get_by_label("Your statement").fill(STATEMENT)
    page.get_by_label("Evidence").set_input_files(
        {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    page.get_by_role("button", name="File appeal").click()

    expect(page.get_by_role("status")).to_contain_text("Your appeal was received")
    assert page.url == notice_link(url, case)
    your_appeal = page.get_by_role("region", name="Your appeal")
    expect(your_appeal.get_by_text("Received", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="File appeal")).to_have_count(0)
    appeal = Appeal.objects.get(case=case)
    assert appeal.task.excluded.filter(pk=alice.pk).exists()
    assert [(item.name, item.content_type) for item in appeal.evidence.all()] == [
        ("letter.pdf", "application/pdf")
    ]

    # alice, who made the decision, asks for the next task and gets nothing.
    alice_page = staff_page()
    log_in_to_my_queues(alice_page, url, alice.username)
    alice_page.get_by_role("button", name="Claim next", exact=True).click()
    alice_page.wait_for_url(f"{url}/")
    expect(alice_page.get_by_role("status")).to_have_text(
        "Nothing left for you to claim in your queues."
    )
    appeal.task.refresh_from_db()
    assert appeal.task.assignee is None

    # carol, independent, claims it with the keyboard and lands on the appeal page.
    carol_page = staff_page()
    log_in_to_my_queues(carol_page, url, carol.username)
    carol_page.keyboard.press("n")
    carol_page.wait_for_url(f"{url}/appeals/{case.reference}/")
    expect(carol_page.get_by_role("heading", level=1)).to_contain_text(case.reference)
    # The customer's point of view first: no decision appealed, no statement yet.
    expect(carol_page.get_by_role("heading", name="The decision appealed")).to_have_count(0)
    expect(carol_page.get_by_text(STATEMENT)).to_have_count(0)

    carol_page.get_by_role("button", name="Open the customer's statement").click()
    expect(carol_page.locator("blockquote.statement")).to_have_text(STATEMENT)
    expect(carol_page.get_by_role("heading", name="The decision appealed")).to_be_visible()
    evidence = carol_page.get_by_role("link", name="letter.pdf")
    with carol_page.expect_download() as download:
        evidence.click()
    assert download.value.suggested_filename == "letter.pdf"
    with open(download.value.path(), "rb") as downloaded:
        assert downloaded.read() == PDF

    carol_page.get_by_label("Appeal outcome").select_option("overturned")
    carol_page.get_by_label("New outcome").select_option("approve")
    carol_page.get_by_label("Reasons for the customer").fill(REASONS)
    carol_page.get_by_role("button", name="Decide appeal").click()
    carol_page.wait_for_url(f"{url}/")
    expect(carol_page.get_by_role("status")).to_contain_text(
        f"Appeal of {case.reference} decided: Overturned (approve)."
    )

    # The customer reloads the link: the outcome, and the reasons in words.
    page.reload()
    expect(your_appeal).to_contain_text("The decision was overturned.")
    expect(your_appeal.get_by_text("Decided", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Why")).to_contain_text(REASONS)
    expect(page.get_by_text("The outcome is: approve.")).to_be_visible()  # no outcome wording

    case.refresh_from_db()
    appeal.refresh_from_db()
    assert (case.status, case.final_outcome, case.decided_by) == (
        Case.Status.APPEAL_DECIDED,
        "approve",
        Case.DecidedBy.HUMAN,
    )
    assert (appeal.status, appeal.outcome, appeal.decided_by) == (
        Appeal.Status.DECIDED,
        Appeal.Outcome.OVERTURNED,
        carol,
    )

    # The AI system: one signed webhook for the appeal (beside the one of alice's decision).
    hooks = webhooks_received(receiver, count=2)
    topics = sorted(hook.headers["X-Workbench-Topic"] for hook in hooks)
    assert topics == ["case.appeal_decided", "case.finalized"]
    [hook] = [h for h in hooks if h.headers["X-Workbench-Topic"] == "case.appeal_decided"]
    claims.refresh_from_db()
    signature = hmac.new(claims.callback_secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Workbench-Signature"] == f"sha256={signature}"
    body = json.loads(hook.body)
    assert (body["reference"], body["outcome"], body["decided_by"]) == (
        case.reference,
        "approve",
        "human",
    )
    assert (body["appeal"]["outcome"], body["appeal"]["outcome_appealed"]) == (
        "overturned",
        "deny",
    )
    assert body["reasons"] == [{"code": None, "text": REASONS}]

    # The customer: one email when the reviewer decided the case, one when
    # the appeal was filed, one when it was decided.
    emails = emails_sent(count=3)
    assert [(e.topic, e.destination, e.status) for e in emails] == [
        ("case.decided", "ana@example.org", OutboxMessage.Status.SENT),
        ("appeal.filed", "ana@example.org", OutboxMessage.Status.SENT),
        ("appeal.decided", "ana@example.org", OutboxMessage.Status.SENT),
    ]
    assert [(m.to, m.extra_headers["X-Workbench-Topic"]) for m in mailoutbox] == [
        (["ana@example.org"], "case.decided"),
        (["ana@example.org"], "appeal.filed"),
        (["ana@example.org"], "appeal.decided"),
    ]
    assert notice_link("http://testserver", case) in mailoutbox[2].body

    assert trail_verify().ok

"""Independence and a reviewer's own workflow in real headless Chromium.

A three-level reporting line (alice, who decided the case; her manager; his
manager) never gets the appeal with **Claim next**, by key or by mouse, not
even after the line changes while the appeal is open, and the appeal page is
a 404 to them; an independent appeal reviewer gets it. A reviewer at the hold
limit is taken back to the case they hold, renews its lease with ``r`` (the
countdown is on the page) and recuses with a reason.
"""

import uuid

from playwright.sync_api import expect

from escalations.services import appeal_file
from reviews.models import Queue, ReviewTask
from tests import factories
from tests.browser.test_reviewer_flow import claims_system, log_in_to_my_queues
from workbench.models import Role, TrailEvent


def test_a_three_level_reporting_line_never_claims_the_appeal(staff_page, live_server, receiver):
    url = live_server.url
    claims = claims_system(receiver)
    make = factories.UserFactory
    top = make(username="appeal.top", role=Role.APPEAL_REVIEWER)
    middle = make(username="appeal.mid", role=Role.APPEAL_REVIEWER, manager=top)
    alice = make(username="rev.alice", role=Role.REVIEWER, manager=middle)
    newcomer = make(username="appeal.new", role=Role.APPEAL_REVIEWER)
    carol = make(username="appeal.carol", role=Role.APPEAL_REVIEWER)
    case = factories.decided_case(claims, alice, 1)
    appeal = appeal_file(
        case=case, statement="It was needed.", evidence=[], idempotency_key=uuid.uuid4().hex
    )

    for person, how in ((top, "key"), (middle, "mouse")):
        page = staff_page()
        log_in_to_my_queues(page, url, person.username)
        if how == "key":
            page.keyboard.press("n")
        else:
            page.get_by_role("button", name="Claim next", exact=True).click()
        page.wait_for_url(f"{url}/")
        expect(page.get_by_role("status")).to_have_text(
            "Nothing left for you to claim in your queues."
        )
        assert page.goto(f"{url}/appeals/{case.reference}/").status == 404
        assert page.goto(f"{url}/cases/{case.reference}/").status == 404

    # While the appeal is open, the newcomer becomes the top manager's manager.
    top.manager = newcomer
    top.save(update_fields=["manager"])
    page = staff_page()
    log_in_to_my_queues(page, url, newcomer.username)
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/")
    expect(page.get_by_role("status")).to_have_text("Nothing left for you to claim in your queues.")
    task = ReviewTask.objects.get(pk=appeal.task_id)
    assert (task.status, task.assignee) == ("open", None)

    page = staff_page()
    log_in_to_my_queues(page, url, carol.username)
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/appeals/{case.reference}/")
    assert ReviewTask.objects.get(pk=appeal.task_id).assignee == carol


def test_hold_limit_renew_and_recuse_from_the_keyboard_and_the_mouse(
    staff_page, live_server, receiver
):
    url = live_server.url
    claims = claims_system(receiver)
    alice = factories.UserFactory(username="rev.alice", role=Role.REVIEWER)
    # Two minutes: the lease is within its warning time from the start.
    Queue.objects.filter(system=claims).update(lease_minutes=2)
    first = factories.ingest(claims, factories.claim_payload(1))
    factories.ingest(claims, factories.claim_payload(2))
    page = staff_page()
    log_in_to_my_queues(page, url, alice.username)
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/cases/{first.reference}/")
    expect(page.locator("[data-lease-expires]")).to_contain_text("left")
    expect(page.get_by_text("Your lease runs out soon")).to_be_visible()

    # At the limit (one): Claim next opens the case held, and says why.
    page.get_by_role("button", name="Claim next").click()
    page.wait_for_url(f"{url}/cases/{first.reference}/")
    expect(page.get_by_text("You already hold a task")).to_be_visible()
    expect(page.get_by_role("button", name="Agree")).to_be_visible()
    expect(page.get_by_role("button", name="Release")).to_be_visible()

    # Renew with the key, then with the mouse.
    renewals = TrailEvent.objects.filter(action="case.lease_renewed")
    with page.expect_navigation():
        page.keyboard.press("r")
    expect(page.get_by_text("is yours until")).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Renew lease").click()
    expect(page.get_by_text("is yours until")).to_be_visible()
    assert renewals.count() == 2

    # Recuse: a reason is required.
    page.get_by_text("Recuse (conflict of interest)").click()
    page.get_by_role("button", name="Recuse").click()
    expect(page.get_by_text("say why you recuse yourself")).to_be_visible()
    page.get_by_label("Why you recuse yourself").fill("The member is my cousin.")
    page.get_by_role("button", name="Recuse").click()
    page.wait_for_url(f"{url}/")
    task = ReviewTask.objects.get(case=first)
    assert task.status == "open" and alice in task.excluded.all()

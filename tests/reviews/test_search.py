"""The staff search (reviews.selectors.search, the ``reviews:search`` page):
exact matches by reference (any case), external id and subject reference,
only among the cases the searcher may open, the same "no results" for a case
they may not open as for none, refusals that run no query, the navigation
box on staff pages only, the htmx fragment, and a bounded number of queries."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

from reviews.models import Queue
from reviews.selectors.search import SearchRefused, cases_search, search_term
from reviews.services.notices import notice_url
from reviews.services.queue_members import queue_members_set
from tests import factories
from tests.factories import client_for
from tests.reviews.screens import HTMX, deny_case
from workbench.models import Role, TrailEvent
from workbench.services import Actor, trail_integrate

SEARCH = "/search/"
NO_RESULTS = "No results for"


def search(client, q, **headers):
    response = client.get(SEARCH, {"q": q}, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def results(html):
    """The results region (the page echoes the term in the form)."""
    return html.split('<section id="search-results"', 1)[1]


def main(html):
    return html.split("<main", 1)[1]


def only_members(system, role, *users):
    """Make every queue of ``system`` for ``role`` list ``users`` as its members."""
    for queue in Queue.objects.filter(system=system, role=role):
        queue_members_set(queue=queue, users=list(users), actor=Actor.workbench("tests"))


@pytest.fixture
def case(system):
    return deny_case(system, 7)


# --- Each kind of match ---------------------------------------------------------------------


def test_a_case_is_found_by_reference_in_any_case_external_id_and_subject_reference(alice, case):
    client = client_for(alice)
    link = f'href="{reverse("reviews:case", args=[case.reference])}"'
    for q in (
        case.reference,
        case.reference.lower(),
        f"  {case.reference.lower()}  ",
        case.external_id,
        case.subject.reference,
    ):
        html = search(client, q)
        assert link in html, q
        assert NO_RESULTS not in html
        assert f"<td>{case.system.name}</td>" in html
        assert f"<td>{case.get_status_display()}</td>" in html


def test_matches_are_exact(alice, case):
    client = client_for(alice)
    for q in (case.reference[:-1], case.external_id[:-2], case.subject.reference + "0"):
        html = search(client, q)
        assert case.reference not in html and NO_RESULTS in html


def test_results_are_newest_first_and_at_most_50(alice, system):
    subject = {"reference": "MBR-SHARED", "name": "Ana Ruiz", "email": "ana@example.org"}
    cases = [deny_case(system, n, subject=subject) for n in range(1, 53)]
    hits = cases_search(user=alice, roles={Role.REVIEWER}, q="MBR-SHARED")
    assert len(hits) == 50
    assert [hit.case.pk for hit in hits] == [c.pk for c in reversed(cases)][:50]


# --- Only what the user may open ------------------------------------------------------------


def test_a_reviewer_of_another_team_gets_no_results_for_a_case_that_exists(alice, bob, case):
    only_members(case.system, Role.REVIEWER, alice)
    for q in (case.reference.lower(), case.external_id, case.subject.reference):
        assert case.reference in search(client_for(alice), q)
        html = search(client_for(bob), q)
        # The reference as stored (upper case) is nowhere on the page.
        assert case.reference not in html and "/cases/" not in results(html)
        assert NO_RESULTS in html
        # Word for word the page of a case that does not exist.
        unknown = search(client_for(bob), "NO-SUCH-7")
        assert main(html).replace(q, "?") == main(unknown).replace("NO-SUCH-7", "?")


def test_a_reviewer_still_finds_a_case_they_decided_after_leaving_its_queue(alice, bob, system):
    decided = factories.decided_case(system, alice)
    only_members(system, Role.REVIEWER, bob)
    assert f'href="/cases/{decided.reference}/"' in search(client_for(alice), decided.reference)


def test_a_supervisor_of_another_system_gets_no_results(sam, system, chat_system, case):
    tom = factories.UserFactory(username="sup.tom", role="supervisor")
    only_members(system, Role.SUPERVISOR, sam)
    chat = factories.ingest(chat_system, factories.chat_payload(3))
    assert f'href="/cases/{case.reference}/"' in search(client_for(sam), case.reference)
    html = search(client_for(tom), case.reference.lower())
    assert case.reference not in html and NO_RESULTS in html
    # The system without a supervisors' queue is overseen by every supervisor.
    assert f'href="/cases/{chat.reference}/"' in search(client_for(tom), chat.reference)


def test_compliance_sees_every_case_with_a_link_to_the_purpose_page(case):
    dana = factories.UserFactory(username="comp.dana", role="compliance")
    html = search(client_for(dana), case.external_id)
    assert f'href="{reverse("reviews:case-view", args=[case.reference])}"' in html
    assert f'href="/cases/{case.reference}/"' not in html
    # The purpose page still comes first: the search records no reading.
    assert not TrailEvent.objects.filter(action="case.viewed").exists()


def test_an_admin_sees_every_case_with_a_link_to_its_admin_page(case):
    root = factories.UserFactory(username="adm.root", role="admin", is_staff=True)
    html = search(client_for(root), case.reference)
    assert f'href="{reverse("admin:reviews_case_change", args=[case.pk])}"' in html


def test_an_unknown_reference_gets_no_results(alice, case):
    html = search(client_for(alice), "WB-NONE-NONE")
    assert NO_RESULTS in html and case.reference not in html


# --- Empty, too long, odd ------------------------------------------------------------------


def test_an_empty_search_says_what_can_be_searched(alice, case):
    for q in ("", "   "):
        html = search(client_for(alice), q)
        assert "its external id, or its subject" in html and case.reference not in html


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("A" * 101, "search_too_long"),
        ("x' OR 1=1 --", "search_characters"),
        ("<b>", "search_characters"),
        ("ä", "search_characters"),
    ],
)
def test_a_term_that_is_not_one_is_refused_clearly_and_runs_no_query(
    alice, case, q, code, django_assert_max_num_queries
):
    with pytest.raises(SearchRefused) as refused:
        search_term(q=q)
    assert refused.value.code == code
    client = client_for(alice)
    with django_assert_max_num_queries(10) as queries:
        html = search(client, q)
    assert not any("reviews_case" in query["sql"] for query in queries.captured_queries)
    assert 'role="alert"' in html and NO_RESULTS not in html
    assert "<b>" not in html.split("<main", 1)[1].replace("<b>", "", 0) or q != "<b>"


# --- Nav box, login, htmx, no trail, no log ---------------------------------------------------


def test_the_search_box_is_on_staff_pages_and_not_on_the_customer_notice(alice, case):
    page = client_for(alice).get("/").content.decode()
    assert 'action="/search/"' in page and '<label for="nav-search-q"' in page
    assert ">Search cases</label>" in page and 'name="q"' in page
    notice = Client().get(notice_url(case))
    assert notice.status_code == 200
    assert "/search/" not in notice.content.decode()
    assert "Search cases" not in notice.content.decode()


def test_anonymous_users_are_sent_to_the_login(case):
    response = Client().get(SEARCH, {"q": case.reference})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/search/")


def test_an_htmx_request_gets_the_results_fragment(alice, case):
    html = search(client_for(alice), case.reference, **HTMX)
    assert html.lstrip().startswith('<section id="search-results"')
    assert case.reference in html and "<html" not in html and "nav-search" not in html


def test_a_search_writes_no_trail_event_and_logs_no_term(alice, case, caplog):
    trail_integrate()
    before = TrailEvent.objects.count()
    with caplog.at_level(logging.DEBUG):
        search(client_for(alice), case.external_id)
        search(client_for(alice), "NOT-A-CASE-42")
    trail_integrate()
    assert TrailEvent.objects.count() == before
    assert case.external_id not in caplog.text and "NOT-A-CASE-42" not in caplog.text


def test_50_results_read_a_bounded_number_of_queries(
    alice, bob, system, django_assert_max_num_queries
):
    """As many queries for 50 results as for one, by each way in (the queue,
    the trail of a case one acted on): no query per case."""
    subject = {"reference": "MBR-MANY", "name": "Ana Ruiz", "email": "ana@example.org"}
    deny_case(system, 900, subject={**subject, "reference": "MBR-ONE"})
    for n in range(1, 56):
        deny_case(system, n, subject=subject)
    client = client_for(alice)
    client.get("/")
    with django_assert_max_num_queries(7 + factories.trail_wait_queries()) as one:
        assert search(client, "MBR-ONE").count('href="/cases/WB-') == 1
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert search(client, "MBR-MANY").count('href="/cases/WB-') == 50

    # Through the trail: bob sees none by a queue, each case is read at once.
    only_members(system, Role.REVIEWER, alice)
    bob_client = client_for(bob)
    bob_client.get("/")
    trail_integrate()  # the setup's events chained (PostgreSQL): not the search's to do
    with django_assert_max_num_queries(9 + factories.trail_wait_queries()) as one:
        search(bob_client, "MBR-ONE")
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert NO_RESULTS in search(bob_client, "MBR-MANY")

"""Rows of the permission matrix for reviews' screens: the reviewer's, and a
compliance officer's read-only view of a case."""

from django.urls import reverse

from tests import factories
from tests.security.matrix import COMPLIANCE_ONLY, LOGIN, Row, decision, ref, web


def _search(case: str):
    return lambda w: reverse("reviews:search") + "?q=" + getattr(w, case).reference.lower()


REVIEWS_ROWS = [
    # --- the staff search (each person sees the cases they may open; 200 either way) ------------
    Row("reviews:search", "-", "GET", web(LOGIN, 200)),
    Row("reviews:search", "case_a", "GET", web(LOGIN, 200), url=_search("case_a")),
    Row("reviews:search", "-", "POST", web(LOGIN, 405)),
    # --- the reviewer's screens ---------------------------------------------------------------
    # An admin without a queue role is sent on to the admin.
    Row("reviews:queues", "-", "GET", web(LOGIN, 200, admin=302)),
    Row("reviews:claim", "-", "GET", web(LOGIN, 405)),
    Row("reviews:claim", "next in my queues", "POST", web(LOGIN, 302)),
    Row(
        "reviews:claim",
        "a queue of another role",
        "POST",
        web(LOGIN, 302),  # "nothing left for you to claim in supervisor"
        data=lambda w: {"queue": factories.queue_id(w.system_a, "supervisor")},
    ),
    Row(
        "reviews:case",
        "case_a",
        "GET",
        web(LOGIN, 404, reviewer=200, reviewer_b=200, supervisor=200, compliance=302),
        kwargs=ref("case_a"),
    ),
    Row(
        "reviews:case",
        "case_b of system B",
        "GET",
        web(LOGIN, 404, reviewer=200, reviewer_b=200, supervisor=200, compliance=302),
        kwargs=ref("case_b"),
    ),
    Row(
        "reviews:case",
        "case_appealed",
        "GET",
        # The appeal reviewer sees it through the appeal page only.
        web(
            LOGIN,
            404,
            reviewer=200,
            reviewer_b=200,
            appeal_reviewer=302,
            supervisor=200,
            compliance=302,
        ),
        kwargs=ref("case_appealed"),
    ),
    Row(
        "reviews:case",
        "unknown",
        "GET",
        # Compliance is asked for a purpose first, for any reference: nothing leaks.
        web(LOGIN, 404, compliance=302),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
    ),
    Row(
        "reviews:case",
        "case_a, release its task",
        "POST",
        # Only the holder; another reviewer is told the task is not theirs.
        web(LOGIN, 404, reviewer=302, reviewer_b=409),
        kwargs=ref("case_a"),
        data=decision("case_a"),
    ),
    Row(
        "reviews:case",
        "case_a, with the task of case_b",
        "POST",
        web(LOGIN, 404),
        kwargs=ref("case_a"),
        data=decision("case_b"),
    ),
    Row(
        "reviews:case",
        "case_b, escalate its task",
        "POST",
        web(LOGIN, 404, reviewer=409, reviewer_b=302),
        kwargs=ref("case_b"),
        data=decision("case_b", "escalate"),
    ),
    # --- a compliance officer's read-only view of a case, with a purpose ----------------------
    Row("reviews:case-view", "case_a", "GET", COMPLIANCE_ONLY, kwargs=ref("case_a")),
    Row(
        "reviews:case-view",
        "case_a, with a purpose",
        "POST",
        COMPLIANCE_ONLY,
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": "Audit of claim denials, ticket AUD-7"},
    ),
    Row(
        "reviews:case-view",
        "case_a, without a purpose",
        "POST",
        web(LOGIN, 404, compliance=422),
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": "   "},
    ),
    Row(
        "reviews:case-view",
        "unknown, with a purpose",
        "POST",
        web(LOGIN, 404),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
        data=lambda w: {"purpose": "Audit"},
    ),
]

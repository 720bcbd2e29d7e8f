"""URLs against the corpus: what a path parameter or a query string can
carry (NUL, invalid UTF-8, traversal, 10,000 characters, dates at the ends
of the calendar, numbers no column holds). Each is a 4xx or the page as
for no filter, never a server error."""

import pytest
from django.test import Client

from reviews.models import ReviewTask
from tests import factories
from tests.factories import client_for
from tests.fuzz.conftest import assert_clean, assert_refused, counts
from workbench.services import api_key_create

# As they appear in a request line: percent-encoded where a client must encode.
PATH_VALUES = {
    "nul": "%00",
    "nul-inside": "WB-%00-X",
    "invalid-utf8": "%FF%FE",
    "overlong-utf8-slash": "%C0%AF",
    "traversal": "..%2F..%2Fetc%2Fpasswd",
    "backslash-traversal": "..%5C..%5Cwin.ini",
    "10k-characters": "W" * 10_000,
    "template": "%7B%7B1234321%7Cadd%3A1111111%7D%7D",
    "sql": "'%20OR%20'1'%3D'1",
    "emoji": "%F0%9F%98%80",
}

# Each URL with a path parameter, with {} where the value goes.
PATHS = [
    "/cases/{}/",
    "/appeals/{}/",
    "/appeals/{}/evidence/00000000-0000-0000-0000-000000000000/",
    "/notice/{}/",
    "/api/v1/cases/{}",
    "/api/v1/cases/{}/contest",
    "/supervisor/systems/{}/switch/",
    "/supervisor/tasks/{}/reassign/",
    "/compliance/export/{}/",
    "/accounts/reset/{}/{}/",
    "/admin/reviews/case/{}/change/",
]


@pytest.fixture
def everyone_at_once(db):
    """A person in every role, so that each URL goes as deep as it can."""
    user = factories.UserFactory(username="all.roles", role="reviewer", is_staff=True)
    user.is_superuser = True
    user.save()
    from django.contrib.auth.models import Group

    for role in ("appeal_reviewer", "supervisor", "compliance", "admin"):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.mark.parametrize("value", PATH_VALUES.values(), ids=PATH_VALUES.keys())
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_path_parameter_of_any_shape_is_refused_cleanly(
    system, everyone_at_once, path, value, method
):
    before = counts()
    url = path.replace("{}", value)
    key = "Bearer " + api_key_create(system=system, actor=factories.ACTOR).plaintext
    client = client_for(everyone_at_once)

    if method == "GET":
        response = client.get(url, HTTP_AUTHORIZATION=key)
    else:
        response = client.post(
            url, {"reason": "x"}, content_type="application/json", HTTP_AUTHORIZATION=key
        )

    assert_clean(response)
    # Refused; or, for the admin, sent back to its index ("no such object"),
    # and for the forged reset link, its "the link is invalid" page.
    if not (path.startswith(("/admin/", "/accounts/")) and response.status_code in (200, 302)):
        assert_refused(response)
    assert counts()["cases"] == before["cases"]


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01&end=0001-01-01",
        "end=0001-01-05",
        "start=9999-12-31&end=9999-12-31",
        "start=9999-12-31",
        "end=0001-01-01&start=9999-12-31",
        "start=2026-02-30",
        "start=%00&end=%00",
        "start=" + "9" * 5000,
        "start=-1&end=1e3",
        "start=%FF%FE",
        "week=0001-01-01",
        "week=0001-01-02",
        "week=9999-12-31",
        "week=9999-12-27",
        "week=%00",
        "format=%00",
        "format=xml",
        "format=html&start=0001-01-01",
    ],
)
@pytest.mark.parametrize(
    "path", ["/compliance/", "/compliance/reviewers/", "/compliance/transparency/"]
)
def test_a_report_filter_of_any_shape_answers_without_a_server_error(db, path, query):
    officer = factories.UserFactory(username="comp.fuzz", role="compliance")

    for headers in ({}, {"HX-Request": "true"}):
        response = client_for(officer).get(f"{path}?{query}", headers=headers)

        assert_clean(response)
        assert response.status_code in (200, 400, 422), response.content[:300]


@pytest.mark.parametrize(
    "data",
    [
        {"date_from": "0001-01-01", "date_to": "0001-01-01"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "%00"},
        {"case": "WB-\x00"},
        {"case": "x" * 10_000},
        {"system": "' OR '1'='1"},
    ],
)
def test_an_export_filter_of_any_shape_answers_without_a_server_error(system, data):
    officer = factories.UserFactory(username="comp.fuzz", role="compliance")

    response = client_for(officer).post("/compliance/export/", {"format": "jsonl", **data})
    body = b"".join(response.streaming_content) if response.streaming else response.content

    assert_clean(response, body)
    assert response.status_code in (200, 422), body[:300]


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=1e3",
        "after=%00",
        "after=" + "9" * 40,
        "after=" + "9" * 5000,
        "limit=0",
        "limit=" + "9" * 40,
        "limit=NaN",
        "after=1&after=2",
    ],
)
def test_a_trail_query_of_any_shape_is_read_or_refused(system, query):
    client = factories.api_client(system, scope="compliance")

    response = client.get(f"/api/v1/trail?{query}")

    assert_clean(response)
    if response.status_code != 200:
        assert_refused(response, [400, 422])


@pytest.mark.parametrize(
    "form",
    [
        {"queue": "\x00"},
        {"queue": "../../etc"},
        {"queue": "x" * 10_000},
        {"queue": "' OR '1'='1"},
        {"queue": "{{ 1234321|add:1111111 }}"},
    ],
)
def test_claiming_from_a_queue_of_any_name_is_refused_or_finds_nothing(system, alice, form):
    factories.ingest(system, factories.claim_payload(800))

    response = client_for(alice).post("/queues/claim/", form)

    assert_clean(response)
    # Nothing claimed: no queue has that name.
    assert response.status_code in (302, 404)
    assert not ReviewTask.objects.filter(assignee=alice).exists()


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wb_\x00\x00_secret",
        "Bearer wb_" + "a" * 10_000 + "_x",
        "Bearer wb_abc'--_x",
        "Bearer ' OR '1'='1",
        "Bearer \u00e9t\u00e9",
        "Bearer",
        "Basic d2I6d2I=",
        "bearer wb_x_y",
    ],
)
def test_a_bearer_of_any_shape_is_unauthenticated(db, authorization):
    response = Client().get("/api/v1/cases/WB-NONE-NONE", HTTP_AUTHORIZATION=authorization)

    assert_refused(response, [401])


@pytest.mark.parametrize(
    "cookie",
    ['sessionid="abcdefgh\\000ijkl"', 'csrftoken="\\000"', 'messages="a\\000b"'],
)
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/v1/trail/head"])
def test_a_cookie_with_a_nul_character_is_refused(db, cookie, path):
    """A cookie may spell NUL as an octal escape, which Django decodes; the
    session would be looked up by it."""
    response = Client(HTTP_COOKIE=cookie).get(path)

    assert_refused(response, [400])

"""The intake API against the corpus: bodies it must refuse (400/413/422 with
a code, nothing stored), and text it must keep exactly as sent."""

import json

import pytest
from django.conf import settings
from django.db import connection

from reviews.models import Case
from reviews.services.assignment import task_claim_next
from reviews.services.notices import notice_token
from tests import factories
from tests.factories import client_for
from tests.fuzz.conftest import (
    CORPUS,
    INJECTIONS,
    assert_clean,
    assert_escaped,
    assert_refused,
    counts,
)
from tests.fuzz.conftest import corpus as corpus_file

BODIES = corpus_file("bodies.json")["bodies"]


def deep(levels: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * levels + b"1" + closer * levels


def deep_in_input(levels: int) -> bytes:
    payload = json.dumps(factories.claim_payload(900, input={"deep": "__DEEP__"}))
    return payload.replace('"__DEEP__"', deep(levels, b'{"a": ', b"}").decode()).encode()


def with_number(literal: str, where: str = "metadata") -> bytes:
    """A claim whose ``metadata.n`` (or ``confidence``) is ``literal``, as written."""
    if where == "confidence":
        payload = factories.claim_payload(901)
        payload["confidence"] = "__N__"
    else:
        payload = factories.claim_payload(901, metadata={"n": "__N__"})
    return json.dumps(payload).replace('"__N__"', literal).encode()


# Generated bodies, too big or too regular to keep as files: (body, status, code).
GENERATED = {
    "100k-open-arrays": (b"[" * 100_000, 400, "too_deep"),
    "100k-nested-arrays": (deep(100_000), 400, "too_deep"),
    "100k-nested-objects": (deep(100_000, b'{"a": ', b"}"), 400, "too_deep"),
    "100k-levels-inside-input": (deep_in_input(100_000), 400, "too_deep"),
    "33-levels": (deep(33), 400, "too_deep"),
    "a-5000-digit-number": (with_number("9" * 5000), 400, "malformed_json"),
    "1e309-in-metadata": (with_number("1e309"), 400, "malformed_json"),
    "minus-1e309-in-metadata": (with_number("-1e309"), 400, "malformed_json"),
    "NaN-confidence": (with_number("NaN", "confidence"), 400, "malformed_json"),
    "Infinity-confidence": (with_number("Infinity", "confidence"), 400, "malformed_json"),
    "1e308-confidence": (with_number("1e308", "confidence"), 422, "invalid"),
    "huge-integer-confidence": (with_number("9" * 400, "confidence"), 422, "invalid"),
    "negative-confidence": (with_number("-1e-300", "confidence"), 422, "invalid"),
    "string-confidence": (with_number('"0.5"', "confidence"), 422, "invalid"),
    "boolean-confidence": (with_number("true", "confidence"), 422, "invalid"),
}
CASES = {name: (CORPUS / "bodies" / name).read_bytes() for name in BODIES}


def _bodies():
    for name, (status, code) in BODIES.items():
        yield pytest.param(CASES[name], status, code, id=name)
    for name, (body, status, code) in GENERATED.items():
        yield pytest.param(body, status, code, id=name)


ENDPOINTS = ["/api/v1/cases", "/api/v1/cases/batch", "/api/v1/cases/{reference}/contest"]


@pytest.fixture
def finalized(system):
    """A case the AI decided alone, that a contest would send to a person."""
    return factories.ingest(system, factories.claim_payload(902, output={"outcome": "approve"}))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("body", "status", "code"), list(_bodies()))
def test_a_bad_body_is_refused_with_its_code_and_nothing_is_stored(
    api_client, finalized, endpoint, body, status, code
):
    before = counts()

    response = api_client.post(
        endpoint.format(reference=finalized.reference), body, content_type="application/json"
    )

    # Not JSON at all is refused alike everywhere; a JSON value that is
    # not the endpoint's object is the endpoint's own 422.
    assert_refused(response, [status])
    assert response.json()["error"]["code"] == code
    assert counts() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=latin-1",
        "",
    ],
)
def test_a_case_sent_as_another_content_type_is_read_as_json_or_refused(api_client, content_type):
    """The body decides, not the header: JSON is JSON (a key, not a cookie,
    authenticates, so a browser's cross-site form cannot post here); anything
    else is refused."""
    before = counts()
    payload = json.dumps(factories.claim_payload(903)).encode()

    response = api_client.post("/api/v1/cases", payload, content_type=content_type)
    form = api_client.post("/api/v1/cases", b"external_id=CLM-1", content_type=content_type)

    assert_clean(response)
    assert response.status_code == 201, response.content
    assert_refused(form, [400])
    assert counts()["cases"] == before["cases"] + 1


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/cases", "API_MAX_BODY_BYTES"),
        ("/api/v1/cases/WB-NONE-NONE/contest", "API_MAX_BODY_BYTES"),
        ("/api/v1/cases/batch", "API_MAX_BATCH_BODY_BYTES"),
        ("/api/v1/cases/batch/", "API_MAX_BATCH_BODY_BYTES"),
    ],
)
def test_a_body_announced_over_its_limit_is_refused_before_it_is_read(api_client, path, limit):
    """The middleware goes by Content-Length: a client announcing 64 MiB + 1
    is refused without the body being sent (nor allocated here)."""
    before = counts()
    over = getattr(settings, limit) + 1

    response = api_client.post(path, b"{}", content_type="application/json", CONTENT_LENGTH=over)

    assert_refused(response, [413])
    assert response.json()["error"]["code"] == "too_large"
    assert counts() == before


def test_a_body_over_one_mebibyte_is_refused_and_one_at_the_limit_is_read(api_client):
    payload = factories.claim_payload(904, metadata={"blob": ""})
    room = settings.API_MAX_BODY_BYTES - len(json.dumps(payload).encode())
    payload["metadata"]["blob"] = "x" * room
    at_limit = json.dumps(payload).encode()
    over = at_limit.replace(b'"blob": "', b'"blob": "x', 1)

    refused = api_client.post("/api/v1/cases", over, content_type="application/json")
    read = api_client.post("/api/v1/cases", at_limit, content_type="application/json")

    assert_refused(refused, [413])
    assert read.status_code == 201, read.content[:300]


def test_a_content_length_no_file_could_have_is_refused(api_client):
    # (gunicorn refuses a Content-Length that is not digits before Django sees it.)
    response = api_client.post(
        "/api/v1/cases", b"{}", content_type="application/json", CONTENT_LENGTH="9" * 30
    )

    assert_refused(response, [413])


# --- Text that is valid: stored verbatim, shown escaped --------------------------------------

# Where a case carries free text: every field without a fixed vocabulary.
FREE_TEXT = [
    "external_id",
    "subject.reference",
    "subject.name",
    "model.name",
    "model.version",
    "output.summary",
    "output.reasons.0.text",
    "output.answer",
    "explanation",
    "input.claim.note",
    "metadata.note",
]


def _set(payload: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _get(payload, path: str):
    for part in path.split("."):
        payload = payload[int(part)] if isinstance(payload, list) else payload[part]
    return payload


@pytest.mark.parametrize("text", INJECTIONS)
def test_text_in_every_free_field_is_kept_verbatim_and_shown_escaped(
    system, api_client, alice, text
):
    payload = factories.claim_payload(905)
    for path in FREE_TEXT:
        _set(payload, path, text)
    payload["input"][text] = text  # a key of free JSON too
    payload["metadata"][text] = text

    response = api_client.post("/api/v1/cases", payload, content_type="application/json")

    assert_clean(response)
    assert response.status_code == 201, response.content
    case = Case.objects.get(reference=response.json()["reference"])
    stored = {
        "external_id": case.external_id,
        "subject": {"reference": case.subject.reference, "name": _subject_name(case)},
        "model": {"name": case.model_name, "version": case.model_version},
        "output": case.output,
        "explanation": case.explanation,
        "input": case.input,
        "metadata": case.metadata,
    }
    for path in FREE_TEXT:
        assert _get(stored, path) == text, path
    assert case.input[text] == text and case.metadata[text] == text
    # The SQL did nothing: every table is still there and counts as before.
    assert Case.objects.count() == 1
    assert "reviews_case" in connection.introspection.table_names()
    # The API gives it back as sent.
    detail = api_client.get(f"/api/v1/cases/{case.reference}").json()
    assert detail["external_id"] == text
    assert detail["reasons"][0]["text"] == text
    # The reviewer's case page and the customer's notice show it escaped.
    task_claim_next(user=alice)
    page = client_for(alice).get(f"/cases/{case.reference}/")
    notice = client_for(alice).get(f"/notice/{notice_token(case.reference)}/")
    for shown in (page, notice):
        assert_clean(shown)
        assert shown.status_code == 200
        assert_escaped(shown.content, text)


def _subject_name(case) -> str:
    from reviews.services.subjects import contact_open

    return contact_open(case.subject)["name"]


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize(
    "path", ["output.outcome", "subject.locale", "subject.email", "output.reasons.0.code", "kind"]
)
def test_text_in_a_field_with_a_vocabulary_is_kept_or_refused_by_name(
    system, api_client, path, text
):
    """Fields with a fixed form (an outcome of the policy, a locale, an
    email, a code): the text is refused with the field named, or, where the
    form allows it, kept as sent."""
    before = counts()
    payload = factories.claim_payload(906)
    _set(payload, path, text)

    response = api_client.post("/api/v1/cases", payload, content_type="application/json")

    assert_clean(response)
    if response.status_code == 201:
        case = Case.objects.get(reference=response.json()["reference"])
        stored = {"output": case.output, "subject": {"locale": case.subject.locale}}
        if path == "subject.email":
            from reviews.services.subjects import contact_open

            stored["subject"]["email"] = contact_open(case.subject)["email"]
        assert _get(stored, path) == text
    else:
        assert_refused(response, [422])
        assert path in [field["path"] for field in response.json()["error"]["fields"]]
        assert counts() == before


@pytest.mark.parametrize("text", INJECTIONS[:8])
def test_a_contest_reason_is_taken_as_text(api_client, finalized, text):
    response = api_client.post(
        f"/api/v1/cases/{finalized.reference}/contest",
        {"reason": text},
        content_type="application/json",
    )

    assert_clean(response)
    assert response.status_code == 200, response.content
    assert Case.objects.get(pk=finalized.pk).status == Case.Status.PENDING_REVIEW


@pytest.mark.parametrize("text", INJECTIONS)
def test_text_as_a_reference_in_the_url_is_not_found(api_client, text):
    from urllib.parse import quote

    response = api_client.get(f"/api/v1/cases/{quote(text, safe='')}")

    assert_refused(response, [404])

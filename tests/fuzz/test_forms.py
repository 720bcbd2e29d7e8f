"""The forms against the corpus: the reviewer's decision, the appeal
reviewer's decision, the customer's appeal on the notice page and its
evidence. Text is kept verbatim and shown escaped; what cannot be text (NUL,
too long, too large, not a file we take) is refused with the field named and
nothing stored."""

import re
import uuid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.test import Client

from escalations.models import Appeal, Evidence
from escalations.services import appeal_file, appeal_statement, appeal_statement_open
from reviews.models import Decision
from reviews.services.assignment import task_claim_next
from reviews.services.notices import notice_token
from tests import factories
from tests.factories import client_for, decided_case
from tests.fuzz.conftest import (
    INJECTIONS,
    assert_clean,
    assert_escaped,
    assert_refused,
    corpus,
    counts,
)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
BOUNDARY = "fuzzboundary7MA4YWxkTrZu0gW"


def multipart(fields: dict[str, str], files: list[tuple[bytes, bytes, str]] = ()) -> bytes:
    """A multipart body as a browser sends it, with file names as raw bytes
    (a test client's upload would clean them first)."""
    out = b""
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for disposition, content, content_type in files:
        out += f"--{BOUNDARY}\r\n".encode()
        out += b'Content-Disposition: form-data; name="evidence"; ' + disposition + b"\r\n"
        out += f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def filename(name: str) -> bytes:
    """``filename="..."`` the way browsers write it (HTML: quote, CR and LF
    percent-encoded; the rest as UTF-8)."""
    escaped = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    return b'filename="' + escaped.encode("utf-8", "surrogatepass") + b'"'


def notice_post(case, body: bytes, content_type: str, **extra):
    return Client().post(
        f"/notice/{notice_token(case.reference)}/", body, content_type=content_type, **extra
    )


def urlencoded(fields: dict[str, str | bytes]) -> bytes:
    return "&".join(f"{k}={quote(v)}" for k, v in fields.items()).encode()


# --- The reviewer's decision -----------------------------------------------------------------


@pytest.fixture
def held(system, alice):
    """A denial the reviewer holds, and their decision form's hidden fields."""
    case = factories.ingest(system, factories.claim_payload(700))
    task = task_claim_next(user=alice)
    form = {
        "task": str(task.pk),
        "fencing_token": str(task.fencing_token),
        "idempotency_key": uuid.uuid4().hex,
    }
    return case, form


@pytest.mark.parametrize("text", INJECTIONS)
def test_a_rationale_is_kept_verbatim_and_shown_escaped(held, alice, sam, text):
    case, form = held

    response = client_for(alice).post(
        f"/cases/{case.reference}/", {**form, "action": "escalate", "rationale": text}
    )

    assert_clean(response)
    assert response.status_code == 302, response.content[:500]
    # Stripped of surrounding white space, as every form field is.
    assert Decision.objects.get().rationale == text.strip()
    page = client_for(sam).get(f"/cases/{case.reference}/")
    assert page.status_code == 200
    assert_escaped(page.content, text)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rationale": "before\x00after"}, "rationale"),
        ({"rationale": "x" * 10_001}, "rationale"),
        ({"idempotency_key": "\x00"}, "idempotency_key"),
        ({"idempotency_key": "k" * 65}, "idempotency_key"),
        ({"task": "1e3"}, "task"),
        ({"task": "-1"}, "task"),
        ({"fencing_token": "NaN"}, "fencing_token"),
        ({"fencing_token": "Infinity"}, "fencing_token"),
        ({"action": "{{ 1234321|add:1111111 }}"}, "action"),
        ({"action": "' OR '1'='1"}, "action"),
        ({"outcome": "<script>alert(1)</script>", "action": "override"}, "outcome"),
        ({"reason_code": "'; DROP TABLE reviews_case; --", "action": "override"}, "reason_code"),
    ],
)
def test_a_decision_that_cannot_be_read_is_refused_and_nothing_recorded(held, alice, fields, field):
    case, form = held
    before = counts()

    response = client_for(alice).post(
        f"/cases/{case.reference}/", {**form, "action": "escalate", "rationale": "x", **fields}
    )

    assert_refused(response, [422])
    assert field in response.context["form"].errors
    assert counts() == before
    assert_escaped(response.content, fields[field])


@pytest.mark.parametrize(
    ("fields", "status"),
    [({"task": "9" * 30}, 404), ({"fencing_token": "9" * 30}, 409)],
    ids=["huge-task-id", "huge-fencing-token"],
)
def test_numbers_no_database_holds_are_not_found_or_stale(held, alice, fields, status):
    case, form = held
    before = counts()

    response = client_for(alice).post(
        f"/cases/{case.reference}/", {**form, "action": "release", **fields}
    )

    assert_refused(response, [status])
    assert counts() == before


def test_invalid_utf8_in_a_rationale_is_read_as_replacement_characters(held, alice):
    """Browsers send UTF-8; bytes that are not are read as U+FFFD (Django
    decodes form data with errors="replace"), never a server error."""
    case, form = held
    body = urlencoded({**form, "action": "escalate"}) + b"&rationale=ok%FF%FEthen%C3%28"

    response = client_for(alice).post(
        f"/cases/{case.reference}/", body, content_type="application/x-www-form-urlencoded"
    )

    assert_clean(response)
    assert response.status_code == 302
    assert Decision.objects.get().rationale == "ok\ufffd\ufffdthen\ufffd("


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"action": "escalate", "rationale": "x"}', "application/json"),
        (b"<decision/>", "application/xml"),
        (b"action=escalate", "text/plain"),
    ],
)
def test_a_decision_in_another_content_type_is_refused(held, alice, body, content_type):
    case, _ = held
    before = counts()

    response = client_for(alice).post(f"/cases/{case.reference}/", body, content_type=content_type)

    assert_refused(response, [422])
    assert counts() == before


def test_a_form_over_the_limit_is_refused_before_it_is_read(held, alice):
    case, form = held
    before = counts()

    response = client_for(alice).post(
        f"/cases/{case.reference}/",
        urlencoded({**form, "action": "escalate", "rationale": "x"}),
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=settings.WEB_MAX_BODY_BYTES + 1,
    )

    assert_refused(response, [413])
    assert counts() == before


# --- The appeal reviewer's decision ----------------------------------------------------------


@pytest.fixture
def opened(system, alice, carol):
    """An appeal whose statement the appeal reviewer opened; the form's hidden fields."""
    case = decided_case(system, alice, n=710)
    appeal_file(case=case, statement="Please look again.", evidence=[], idempotency_key="k710")
    task = task_claim_next(user=carol)
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    form = {
        "task": str(task.pk),
        "fencing_token": str(task.fencing_token),
        "idempotency_key": uuid.uuid4().hex,
        "action": "decide",
        "outcome": "upheld",
    }
    return case, form


@pytest.mark.parametrize("text", INJECTIONS)
def test_the_reasons_of_an_appeal_decision_are_kept_and_shown_escaped_to_the_customer(
    opened, carol, text
):
    case, form = opened

    response = client_for(carol).post(f"/appeals/{case.reference}/", {**form, "reasons": text})

    assert_clean(response)
    assert response.status_code == 302, response.content[:500]
    assert Appeal.objects.get().reasons == text.strip()
    notice = Client().get(f"/notice/{notice_token(case.reference)}/")
    assert notice.status_code == 200
    assert_escaped(notice.content, text)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reasons": "a\x00b"}, "reasons"),
        ({"reasons": "x" * 5_001}, "reasons"),
        ({"outcome": "{% debug %}"}, "outcome"),
        ({"outcome": "overturned", "final_outcome": "' OR '1'='1"}, "final_outcome"),
        ({"reason_code": "<script>"}, "reason_code"),
        ({"action": "${1234321+1111111}"}, "action"),
    ],
)
def test_an_appeal_decision_that_cannot_be_read_is_refused(opened, carol, fields, field):
    case, form = opened
    before = counts()

    response = client_for(carol).post(
        f"/appeals/{case.reference}/", {**form, "reasons": "Looked again.", **fields}
    )

    assert_refused(response, [422])
    assert field in response.context["form"].errors
    assert counts() == before
    assert Appeal.objects.get().status != Appeal.Status.DECIDED


# --- The customer's appeal on the notice page ------------------------------------------------


@pytest.fixture
def appealable(system, alice):
    return decided_case(system, alice, n=720)


@pytest.mark.parametrize("text", INJECTIONS)
def test_a_statement_is_kept_verbatim_and_shown_escaped_to_the_appeal_reviewer(
    appealable, carol, text
):
    statement = f"{text} (my words)"

    response = notice_post(
        appealable,
        urlencoded({"statement": statement, "idempotency_key": uuid.uuid4().hex}),
        "application/x-www-form-urlencoded",
    )

    assert_clean(response)
    assert response.status_code == 302, response.content[:500]
    appeal = Appeal.objects.get()
    assert appeal_statement(appeal) == statement.strip()
    task = task_claim_next(user=carol)
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    page = client_for(carol).get(f"/appeals/{appealable.reference}/")
    assert page.status_code == 200
    assert "(my words)" in page.text
    assert_escaped(page.content, statement)
    # The customer's page shows the appeal too, and no trace of evaluation.
    assert_escaped(Client().get(f"/notice/{notice_token(appealable.reference)}/").content, text)


@pytest.mark.parametrize(
    "fields",
    [
        {"statement": "a\x00b"},
        {"statement": "x" * 10_001},
        {"statement": " \t\r\n "},
        {"statement": ""},
        {"idempotency_key": "\x00"},
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 65},
    ],
    ids=["nul", "too-long", "blank", "empty", "nul-key", "no-key", "long-key"],
)
def test_an_appeal_that_cannot_be_read_is_refused_and_nothing_filed(appealable, fields):
    before = counts()
    data = {"statement": "Please look again.", "idempotency_key": uuid.uuid4().hex, **fields}

    response = notice_post(appealable, urlencoded(data), "application/x-www-form-urlencoded")

    assert_refused(response, [422])
    assert counts() == before


def test_invalid_utf8_in_a_statement_is_read_as_replacement_characters(appealable):
    body = b"statement=caf%E9+and+%FF%FE&idempotency_key=" + uuid.uuid4().hex.encode()

    response = notice_post(appealable, body, "application/x-www-form-urlencoded")

    assert_clean(response)
    assert response.status_code == 302
    assert appeal_statement(Appeal.objects.get()) == "caf\ufffd and \ufffd\ufffd"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"statement": "Please look again.", "idempotency_key": "k"}', "application/json"),
        (b"statement=Please", "text/plain"),
        (b"\x00\x01\x02", "application/octet-stream"),
        (b"--nope\r\n\r\n", "multipart/form-data; boundary=nope"),
        (b"statement=x", "multipart/form-data"),  # no boundary
    ],
    ids=["json", "text", "octets", "broken-multipart", "multipart-without-boundary"],
)
def test_an_appeal_in_another_content_type_is_refused(appealable, body, content_type):
    before = counts()

    response = notice_post(appealable, body, content_type)

    assert_refused(response)
    assert counts() == before


def test_an_appeal_announced_over_the_limit_is_refused_before_it_is_read(appealable):
    before = counts()

    response = notice_post(
        appealable,
        multipart({"statement": "Please", "idempotency_key": "k"}),
        f"multipart/form-data; boundary={BOUNDARY}",
        CONTENT_LENGTH=settings.APPEAL_MAX_BODY_BYTES + 1,
    )

    assert_refused(response, [413])
    assert counts() == before


# --- Evidence: file names and contents --------------------------------------------------------

NAMES = corpus("filenames.json")
LONG = [("x" * (length - 4)) + ".pdf" for length in NAMES["long"]]


def _filed(case, disposition: bytes, content: bytes = PDF, content_type="application/pdf"):
    return notice_post(
        case,
        multipart(
            {"statement": "My letter.", "idempotency_key": uuid.uuid4().hex},
            [(disposition, content, content_type)],
        ),
        f"multipart/form-data; boundary={BOUNDARY}",
    )


def _assert_safe_evidence(item: Evidence) -> None:
    """A name without a directory or a control character, short, and not
    starting with a dot; the file under a random name of our own."""
    assert "/" not in item.name and "\\" not in item.name
    assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", item.name)
    assert 0 < len(item.name) <= 100 and not item.name.startswith(".")
    # Stored under a random name in the evidence storage, never under the customer's.
    assert re.fullmatch(r"[0-9a-f]{32}\.bin", item.stored_as)
    assert storages["evidence"].exists(item.stored_as)


@pytest.mark.parametrize("name", NAMES["names"] + LONG, ids=lambda n: repr(n[:40]))
def test_an_evidence_file_name_is_cleaned_before_it_is_kept_or_shown(appealable, carol, name):
    response = _filed(appealable, filename(name))

    assert_clean(response)
    if response.status_code in (400, 422):
        # 422: the name's extension does not say PDF; 400: the part's headers
        # are longer than Django reads (1 KiB).
        assert_refused(response)
        assert counts()["appeals"] == 0
        return
    assert response.status_code == 302, response.content[:500]
    item = Evidence.objects.get()
    _assert_safe_evidence(item)
    assert item.content_type == "application/pdf"
    # Downloaded as an attachment, under a header the name cannot break.
    task = task_claim_next(user=carol)
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    staff = client_for(carol)
    download = staff.get(f"/appeals/{appealable.reference}/evidence/{item.pk}/")
    assert download.status_code == 200
    assert download.content == PDF
    disposition = download["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in download.headers
    page = staff.get(f"/appeals/{appealable.reference}/")
    assert_escaped(page.content, name)


@pytest.mark.parametrize(
    "disposition",
    [
        b"filename*=UTF-8''..%2F..%2Fetc%2Fpasswd.pdf",
        b"filename*=UTF-8''%00.pdf",
        b"filename=\"a.pdf\"; filename*=UTF-8''..%5C..%5Cwin.ini.pdf",
        b"filename=unquoted/../../x.pdf",
        b'filename="' + "файл".encode("koi8-r") + b'.pdf"',  # not UTF-8
        b'filename="' + b"\xff\xfe" + b'.pdf"',
    ],
    ids=["rfc2231-traversal", "rfc2231-nul", "both-forms", "unquoted", "koi8-r", "bad-utf8"],
)
def test_an_evidence_file_name_in_another_encoding_is_cleaned_too(appealable, disposition):
    response = _filed(appealable, disposition)

    assert_clean(response)
    assert response.status_code in (302, 422), response.content[:500]
    for item in Evidence.objects.all():
        _assert_safe_evidence(item)


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("letter.pdf", PNG, "application/pdf"),  # a PNG under a PDF's name
        ("letter.pdf", b"<html><script>alert(1)</script></html>", "application/pdf"),
        ("letter.pdf", b"MZ\x90\x00 an executable", "application/pdf"),
        ("letter.pdf", b"#!/bin/sh\nrm -rf /\n", "application/pdf"),
        ("letter.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
        ("letter.html", PDF, "text/html"),  # a PDF under an HTML name
        ("letter.pdf", b"", "application/pdf"),
        ("letter", PDF, "application/pdf"),  # no extension
    ],
    ids=[
        "png-as-pdf",
        "html-as-pdf",
        "exe-as-pdf",
        "script-as-pdf",
        "svg",
        "pdf-as-html",
        "empty",
        "no-extension",
    ],
)
def test_a_file_that_is_not_what_we_take_is_refused_and_nothing_filed(
    appealable, name, content, content_type
):
    before = counts()

    response = _filed(appealable, filename(name), content, content_type)

    assert_refused(response, [422])
    assert "evidence" in response.text
    assert counts() == before


def test_the_content_decides_the_type_not_what_the_browser_claims(appealable):
    response = _filed(appealable, filename("letter.pdf"), PDF, "text/html")

    assert response.status_code == 302
    assert Evidence.objects.get().content_type == "application/pdf"


def test_too_many_files_are_refused(appealable):
    before = counts()
    files = [(filename(f"letter{n}.pdf"), PDF, "application/pdf") for n in range(6)]

    response = notice_post(
        appealable,
        multipart({"statement": "My letters.", "idempotency_key": "k6"}, files),
        f"multipart/form-data; boundary={BOUNDARY}",
    )

    assert_refused(response, [422])
    assert counts() == before

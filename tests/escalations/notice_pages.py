"""Helpers of the notice tests: the customer's notice page and the appeal
reviewer's page, driven through the test client."""

import re

from reviews.models import Case
from reviews.services.notices import notice_token

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def url(case: Case) -> str:
    return f"/notice/{notice_token(case.reference)}/"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def key(response) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', response.content.decode())[1]


def statement_opened(staff, case, task) -> dict:
    """Open the customer's statement on the appeal page as the holder of
    ``task``; returns the decision form's hidden fields."""
    page = staff.get(f"/appeals/{case.reference}/")
    form = {"task": task.pk, "fencing_token": task.fencing_token, "idempotency_key": key(page)}
    staff.post(f"/appeals/{case.reference}/", {**form, "action": "open"})
    return form


def appeal_post(client, case, response, statement="The visit was necessary.", **files):
    data = {"statement": statement, "idempotency_key": key(response)}
    if files:
        data["evidence"] = list(files.values())
    return client.post(url(case), data)

"""The limits that keep anyone from trying: notice tokens guessed from one
address, appeals posted from one address. (Per-key API limits:
tests/reviews/test_api_access.py; the notice page's GET limit and proxies:
tests/escalations/test_notice.py, tests/workbench/test_http.py.)

Hourly windows: a count cannot restart in the middle of a test. Each test
asks from an address of its own, so no count carries over."""

import uuid

from django.test import Client

from escalations.models import Appeal
from reviews.services.notices import notice_token


def test_guessing_notice_tokens_from_one_address_is_held_back(world, settings):
    settings.NOTICE_RATE_GET = "3/h"
    guesser = Client(REMOTE_ADDR="198.51.100.201")
    real = f"/notice/{notice_token(world.case_decided.reference)}/"

    guesses = [guesser.get(f"/notice/{uuid.uuid4().hex}/").status_code for _ in range(3)]

    assert guesses == [404, 404, 404]
    # Held back even when the next guess is right; another address is not.
    assert guesser.get(real).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.202").get(real).status_code == 200


def test_appeals_posted_from_one_address_are_held_back(world, settings):
    settings.NOTICE_RATE_POST = "2/h"
    client = Client(REMOTE_ADDR="198.51.100.203")
    url = f"/notice/{notice_token(world.case_decided.reference)}/"

    def post(statement: str):
        return client.post(url, {"statement": statement, "idempotency_key": uuid.uuid4().hex})

    statuses = [post("").status_code, post("").status_code, post("Look again.").status_code]

    assert statuses == [422, 422, 429]
    assert not Appeal.objects.filter(case=world.case_decided).exists()

"""The bad-input corpus (``corpus/``) and the checks every answer to it must pass."""

import json
from pathlib import Path

from django.conf import settings

from escalations.models import Appeal, Evidence
from reviews.models import Case, Decision
from workbench.models import TrailEvent

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus(name: str) -> dict:
    return json.loads((CORPUS / name).read_text(encoding="utf-8"))


INJECTIONS = corpus("injection.json")["strings"]
# What a page would show if a template engine evaluated one of INJECTIONS:
# 1234321 + 1111111, 7777777 * 7, the debug tag's context, a password hash.
EVALUATED = ["2345432", "54444439", "'True': True", "md5$"]


def counts() -> dict[str, int]:
    """What a refused request must leave as it was."""
    return {
        "cases": Case.objects.count(),
        "trail": TrailEvent.objects.count(),
        "decisions": Decision.objects.count(),
        "appeals": Appeal.objects.count(),
        "evidence": Evidence.objects.count(),
    }


def assert_clean(response, body: bytes | None = None) -> None:
    """No server error, no traceback, nothing of Django's debug pages."""
    body = response.content if body is None else body
    assert response.status_code < 500, body[:1000]
    assert b"Traceback" not in body
    assert b"Exception Value" not in body


def assert_refused(response, statuses=range(400, 500)) -> None:
    """A 4xx that says why: JSON with a code and a message under /api/, a
    page with text elsewhere."""
    assert_clean(response)
    assert response.status_code in statuses, response.content[:1000]
    if response.status_code == 405:
        assert response["Allow"]  # the methods it takes say it all
    elif response["Content-Type"].startswith("application/json"):
        error = response.json()["error"]
        assert error["code"] and error["message"]
    else:
        assert response.content.strip()


def assert_escaped(body: bytes, text: str) -> None:
    """``text`` is in the page only HTML-escaped, and no template ran it."""
    page = body.decode()
    if any(c in text for c in "<>\"'&"):
        assert text not in page, text
    for marker in [*EVALUATED, settings.SECRET_KEY]:
        assert marker not in page, marker

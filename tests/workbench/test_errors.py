"""What people see when something fails on the server's side, and the limits
that keep a dead worker's task from running twice."""

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client

from reviews import views as review_views
from tests import factories
from tests.factories import client_for
from workbench import tasks


def test_a_server_error_shows_a_page_that_says_nothing_was_saved_half_way(db, monkeypatch):
    alice = factories.UserFactory(role="reviewer")

    def broken(*args, **kwargs):
        raise OperationalError("the connection is closed")

    monkeypatch.setattr(review_views, "queues_overview", broken)
    client = client_for(alice)
    client.raise_request_exception = False
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert "nothing was saved half-way" in page
    assert "Traceback" not in page and "OperationalError" not in page


def test_an_export_ends_before_the_broker_would_hand_it_to_another_worker():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert tasks.trail_export_run.time_limit < visibility


@pytest.mark.parametrize("path", ["/", "/notice/forged/"])
def test_pages_work_while_the_cache_is_out_of_reach(db, path, settings, caplog):
    """Redis gone: the cache misses, rate limits let requests through, logged."""
    settings.CACHES = {
        "default": {
            "BACKEND": "workbench.cache.FailOpenRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = Client().get(path)
    assert response.status_code in (302, 404)
    if path.startswith("/notice/"):
        assert "cache unreachable, add skipped" in caplog.text

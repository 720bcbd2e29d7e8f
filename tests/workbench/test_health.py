"""Liveness, readiness, and the production settings' deploy check."""

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.test import Client

from tests import factories
from workbench.models import TrailHead


def test_healthz_answers_without_touching_anything(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_the_database_the_broker_and_the_trail_head(system):
    factories.ingest(system, factories.claim_payload(1))
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "trail": "ok", "trail_merge_delay": "ok"},
    }


def test_readyz_is_503_when_the_trail_head_disagrees_with_the_last_event(system):
    factories.ingest(system, factories.claim_payload(1))
    TrailHead.objects.filter(id=1).update(seq=1)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["trail"].startswith("error")


@pytest.mark.services
def test_readyz_is_503_when_the_broker_is_down(db, monkeypatch):
    from workbench.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")


def test_production_settings_pass_the_deploy_check():
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "workbench.example.org",
        "TRAIL_SIGNING_KEY": key.decode(),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_every_response_carries_a_request_id_and_json_log_lines_name_it(db):
    import io
    import json
    import logging
    import logging.config

    reviewer = factories.UserFactory(role="reviewer")
    client = factories.client_for(reviewer)
    assert client.get("/healthz").headers["X-Request-ID"]  # made when none is sent

    stream = io.StringIO()
    config = settings.LOGGING
    handler = logging.StreamHandler(stream)
    handler.addFilter(
        logging.config.DictConfigurator(config).configure_filter(config["filters"]["request_id"])
    )
    formatter = config["formatters"]["json"]
    handler.setFormatter(logging.config.DictConfigurator(config).configure_custom(dict(formatter)))
    logger = logging.getLogger("workbench.compliance")  # the compliance guard's log
    logger.addHandler(handler)
    try:
        response = client.get("/compliance/export/", headers={"X-Request-ID": "req-7f3a"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "req-7f3a"
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["request_id"] == "req-7f3a" and line["level"] == "WARNING"
    assert "not a compliance officer" in line["message"]


def test_metrics_show_queue_depth_and_the_oldest_due_task_to_the_scraper_only(system):
    factories.ingest(system, factories.claim_payload(1))  # one open task in claims-review
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    labels = '{queue="claims-review",system="claims-ai"}'
    assert f"workbench_queue_open_tasks{labels} 1.0" in text
    assert f"workbench_queue_oldest_due_timestamp_seconds{labels}" in text
    assert f"workbench_queue_oldest_overdue_seconds{labels} 0.0" in text
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus
    assert Client(REMOTE_ADDR="203.0.113.5").get("/metrics").status_code == 404


def test_pages_carry_a_content_security_policy_without_inline_script(db):
    response = Client().get("/accounts/login/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.content.decode()  # only <script src=...>

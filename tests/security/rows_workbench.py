"""Rows of the permission matrix for workbench's URLs: health and metrics,
login and passwords, and the API."""

from tests import factories
from tests.security.matrix import LOGIN, Row, api_expect, everyone, ref, web

ACCOUNT_ROWS = [
    # --- health and metrics: no credentials, the scraper's address only for /metrics ----
    Row("healthz", "-", "GET", everyone(200)),
    Row("readyz", "-", "GET", everyone(200)),
    Row("metrics", "from 127.0.0.1", "GET", everyone(200)),
    Row("metrics", "from elsewhere", "GET", everyone(404), meta={"REMOTE_ADDR": "203.0.113.9"}),
    # --- login and passwords (Django's views) -----------------------------------------------
    Row("login", "-", "GET", everyone(200)),
    Row(
        "login",
        "wrong password",
        "POST",
        everyone(200),
        data=lambda w: {"username": "rev.alice", "password": "wrong"},
    ),
    Row("logout", "-", "GET", everyone(405)),
    Row("logout", "-", "POST", everyone(302)),
    Row("password_change", "-", "GET", web(LOGIN, 200)),
    Row(
        "password_change",
        "wrong old password",
        "POST",
        web(LOGIN, 200),
        data=lambda w: {"old_password": "x", "new_password1": "y", "new_password2": "y"},
    ),
    Row("password_change_done", "-", "GET", web(LOGIN, 200)),
    Row("password_reset", "-", "GET", everyone(200)),
    Row(
        "password_reset",
        "unknown address",
        "POST",
        everyone(302),
        data=lambda w: {"email": "nobody@example.org"},
    ),
    Row("password_reset_done", "-", "GET", everyone(200)),
    Row(
        "password_reset_confirm",
        "forged link",
        "GET",
        everyone(200),  # "the link was invalid"
        kwargs=lambda w: {"uidb64": "MQ", "token": "set-password"},
    ),
    Row("password_reset_complete", "-", "GET", everyone(200)),
]

API_ROWS = [
    # --- the API: a live key of the right scope, and only its own system's cases -----------
    Row("api:api-root", "-", "GET", everyone(404)),
    Row("api:openapi-json", "-", "GET", everyone(200)),
    Row("api:openapi-view", "-", "GET", everyone(200)),
    Row("api:trail_public_key", "-", "GET", everyone(200)),
    # The whole chain, or (key_compliance_own) claims-ai's events with their proofs:
    # tests/security/test_idor.py checks what each reads.
    Row(
        "api:trail_list",
        "-",
        "GET",
        api_expect(401, key_compliance=200, key_compliance_own=200, compliance=200),
    ),
    Row(
        "api:trail_head_get",
        "-",
        "GET",
        api_expect(401, key_compliance=200, key_compliance_own=200, compliance=200),
    ),
    Row(
        "api:case_create",
        "a claim",
        "POST",
        api_expect(401, key_a=201),
        data=lambda w: factories.claim_payload(50),
    ),
    Row(
        "api:case_create_batch",
        "one claim",
        "POST",
        api_expect(401, key_a=200),
        data=lambda w: {"cases": [factories.claim_payload(51)]},
    ),
    Row("api:case_feed_list", "-", "GET", api_expect(401, key_a=200)),
    Row("api:case_detail", "case_a", "GET", api_expect(401, key_a=200), kwargs=ref("case_a")),
    Row(
        "api:case_detail",
        "case_b of system B",
        "GET",
        api_expect(401, key_a=404),
        kwargs=ref("case_b"),
    ),
    Row(
        "api:case_detail",
        "unknown",
        "GET",
        api_expect(401, key_a=404),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
    ),
    Row(
        "api:case_contest_create",
        "case_decided",
        "POST",
        api_expect(401, key_a=200),
        kwargs=ref("case_decided"),
        data=lambda w: {"reason": "The member called to dispute it."},
    ),
    Row(
        "api:case_contest_create",
        "case_b of system B",
        "POST",
        api_expect(401, key_a=404),
        kwargs=ref("case_b"),
        data=lambda w: {"reason": "The member called to dispute it."},
    ),
    Row(
        "api:case_feedback_create",
        "case_decided",
        "POST",
        api_expect(401, key_a=201),
        kwargs=ref("case_decided"),
        data=lambda w: {"listened": 4, "explained": 3},
    ),
    Row(
        "api:case_feedback_create",
        "case_b of system B",
        "POST",
        api_expect(401, key_a=404),
        kwargs=ref("case_b"),
        data=lambda w: {"listened": 4, "explained": 3},
    ),
]

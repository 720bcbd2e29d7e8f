"""Tests: the same settings as the run they belong to, made fast."""

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .base import *  # noqa: F403
from .base import CACHES, REDIS_URL, STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WORKBENCH_BASE_URL = "http://testserver"
if REDIS_URL:
    # One key space per test run, so parallel runs on one Redis do not meet.
    CACHES["default"]["KEY_PREFIX"] = f"wbtest-{os.getpid()}"

# A throw-away signing key for the run, put in the environment so that the
# processes a test starts sign with the same key.
if not os.environ.get("TRAIL_SIGNING_KEY"):
    os.environ["TRAIL_SIGNING_KEY"] = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
TRAIL_SIGNING_KEY = os.environ["TRAIL_SIGNING_KEY"]
TRAIL_SIGNING_KEY_FILE = Path(tempfile.gettempdir()) / "workbench-test-unused.pem"

# The receivers of the tests listen on 127.0.0.1 (tests that need the rule
# turn it off for themselves).
WEBHOOK_ALLOW_PRIVATE = True

# Many requests from one address; the rate-limit test sets its own rates.
NOTICE_RATE_GET = NOTICE_RATE_POST = "100000/m"
API_RATE_PER_KEY = "100000/m"

# Evidence files of the run go to a scratch directory.
EVIDENCE_ROOT = Path(tempfile.mkdtemp(prefix="workbench-test-evidence-"))
EXPORT_ROOT = Path(tempfile.mkdtemp(prefix="workbench-test-exports-"))
STORAGES = {
    **STORAGES,
    "evidence": {**STORAGES["evidence"], "OPTIONS": {"location": EVIDENCE_ROOT}},
}

if REDIS_URL:
    # A queue of the run's own on the shared broker, and of each xdist worker
    # of the run: each has a database of its own, so a task one worker's
    # Celery worker took from the other's queue would find nothing to do.
    _run = os.environ.get("WORKBENCH_TEST_RUN", str(os.getpid()))
    _xdist = os.environ.get("PYTEST_XDIST_WORKER", "")
    if _xdist and not _run.endswith(f"-{_xdist}"):  # app processes inherit both
        _run = f"{_run}-{_xdist}"
    CELERY_TASK_DEFAULT_QUEUE = f"workbench-test-{_run}"

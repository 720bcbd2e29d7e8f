"""Real headless Chromium (Playwright) against the app served by pytest-django's
``live_server``, in a thread of this process."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
FAILURES = Path(__file__).resolve().parents[2] / "var" / "browser-failures"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test, for the page fixture's teardown.
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


# Package scope, not session: Playwright's sync API leaves its asyncio loop
# marked as running in the main thread until it stops. Stopped at the end of
# tests/browser, it cannot turn the database calls of the tests that follow
# into SynchronousOnlyOperation errors (or break their async_to_sync).
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install it (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # A first page load in a cold CI container can take more than the default 5 s.
    expect.set_options(timeout=10_000)
    playwright = sync_playwright().start()
    # The same loop makes Django take the test thread for async code and refuse
    # its (synchronous, correct) ORM calls: the factories, the assertions, the
    # flush. Allowed while Playwright runs, and only then.
    unsafe_before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if unsafe_before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe_before


@pytest.fixture
def page(browser, request):
    """A fresh browser context (no cookies) and page; a screenshot of it goes
    to var/browser-failures/<test>.png when the test fails, and the test fails
    if the page broke the Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Chromium reports what the Content-Security-Policy refused on its console:
    # any such refusal fails the test (no inline script or style anywhere).
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield page
    reports = request.node.stash.get(REPORTS, {})
    if any(report.failed for report in reports.values()):
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
        except PlaywrightError as exc:  # the test's own failure is the one to report
            print(f"no screenshot of the failure: {exc}")
    context.close()
    assert not refused, f"the Content-Security-Policy refused: {refused}"


@pytest.fixture
def outbox_worker():
    """Who runs the tasks the app enqueues after a commit (the webhook's
    delivery): eager Celery on the SQLite run runs them in the live server's
    thread; on the PostgreSQL + Redis run a real worker, here in a thread."""
    from workbench.celery import app

    if app.conf.task_always_eager:
        yield None
        return
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        app, perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"
    ) as worker:
        yield worker


@pytest.fixture
def staff_page(browser, live_server):
    """Pages for staff, each in a context of its own (their own session
    cookie), closed at teardown."""
    contexts = []

    def open_page() -> Page:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()

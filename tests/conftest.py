import os

import pytest
from django.conf import settings

from tests import factories

SERVICES_RUN = os.environ.get("WORKBENCH_TEST_SERVICES") == "1"


def pytest_configure(config):
    # The services run must really be on PostgreSQL and Redis: a fallback to
    # the embedded default would pass for the wrong reasons.
    if SERVICES_RUN:
        engine = settings.DATABASES["default"]["ENGINE"]
        cache = settings.CACHES["default"]["BACKEND"]
        if "postgresql" not in engine or "redis" not in cache:
            raise pytest.UsageError(f"services run without services: {engine}, {cache}")


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    for item in items:
        if "postgres" in item.keywords and not config.getoption("-m"):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))


@pytest.fixture
def system(db):
    return factories.system_with_policy()


@pytest.fixture
def chat_system(db):
    return factories.system_with_policy(factories.SUPPORT_POLICY)


@pytest.fixture
def api_client(system):

    return factories.api_client(system)

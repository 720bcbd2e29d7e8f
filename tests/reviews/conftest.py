"""Fixtures the reviews tests share."""

import copy

import pytest

from tests import factories


@pytest.fixture
def bob(db):
    return factories.UserFactory(username="rev.bob", role="reviewer")


@pytest.fixture
def catalog(system):
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return factories.reason_code(system, "CO-97", "Included in another service")


@pytest.fixture
def blind_system(db):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    policy["queues"][0]["blind"] = True  # claims-review
    system = factories.system_with_policy(policy)
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return system

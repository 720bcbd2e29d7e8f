"""The demo's people, as fixtures: a reviewer, an appeal reviewer, a supervisor."""

import pytest

from tests import factories


@pytest.fixture
def alice(db):
    return factories.UserFactory(username="rev.alice", role="reviewer")


@pytest.fixture
def carol(db):
    return factories.UserFactory(username="appeal.carol", role="appeal_reviewer")


@pytest.fixture
def sam(db):
    return factories.UserFactory(username="sup.sam", role="supervisor")

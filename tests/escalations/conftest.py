"""Fixtures of the escalations tests."""

import pytest

from tests import factories
from tests.escalations.worded import CATALOG, WORDED_CLAIMS, WORDED_SUPPORT


@pytest.fixture
def catalog(system):
    from reviews.models import ReasonCode

    for n in range(200):
        code, text = factories.carc_codes()[n]
        ReasonCode.objects.get_or_create(
            system=system,
            code=f"CO-{code}",
            defaults={"description": text, "customer_text": f"Plain words for {code}."},
        )


@pytest.fixture
def worded(db):
    from reviews.services import reason_codes_load

    claims = factories.system_with_policy(WORDED_CLAIMS)
    support = factories.system_with_policy(WORDED_SUPPORT)
    reason_codes_load(system=claims, rows=CATALOG, actor=factories.ACTOR)
    return claims, support

import pytest
from django.db import connection, transaction

from workbench.db import prepared_statements


@pytest.mark.postgres
def test_statements_are_prepared_only_inside_the_block(db):
    connection.ensure_connection()
    assert connection.connection.prepare_threshold is None  # Django's default
    with prepared_statements(), connection.cursor() as cursor:
        cursor.execute("SELECT %s::int + 1", [1])
        assert cursor.fetchone() == (2,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        assert [row[0] for row in cursor.fetchall()] == ["SELECT $1::int + 1"]
    assert connection.connection.prepare_threshold is None


def test_elsewhere_it_does_nothing(db):
    with prepared_statements(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.postgres
def test_in_a_transaction_the_plans_are_generic_until_it_ends(transactional_db):
    """The claim's statement is planned once (prepared_statements): inside an
    atomic block the plan cache is forced generic, and only for that transaction."""

    def mode() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            return cursor.fetchone()[0]

    outside = mode()
    with transaction.atomic(), prepared_statements():
        assert mode() == "force_generic_plan"
    assert mode() == outside == "auto"

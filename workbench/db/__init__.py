"""Database helpers that the ORM does not offer."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import Model


def bulk_insert(objs: list[Model], *, batch_size: int = 500) -> None:
    """Insert new rows fast, without reading anything back.

    On PostgreSQL this is ``COPY ... FROM STDIN``, the fastest way in (several
    times a bulk INSERT of the same rows); elsewhere ``bulk_create``. Use it
    for rows whose primary key is set in Python or not needed afterwards:
    auto-increment keys are left to the database and not put on the objects.
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    meta = model._meta
    fields = [
        field
        for field in meta.concrete_fields
        if not field.generated
        and not (field.primary_key and field.get_internal_type().endswith("AutoField"))
    ]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    # COPY runs on psycopg's own cursor: its errors are turned into Django's
    # (IntegrityError, OperationalError), as for every other query, so that
    # callers can settle a unique race the same way whichever insert hit it.
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for obj in objs:
            copy.write_row(
                [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
            )


@contextmanager
def prepared_statements() -> Iterator[None]:
    """Let PostgreSQL keep the plans of the statements run inside, for the
    life of the connection (psycopg prepares each on its first run, and
    reuses it on the next ones inside this block).

    Django turns prepared statements off for every query (``prepare_threshold``
    None), so that connection poolers in transaction mode keep working; a hot
    path turns them on for itself when planning its statements costs more
    than running them. Behind such a pooler this needs one that tracks
    prepared statements (PgBouncer 1.21 or later, ``max_prepared_statements``).
    Elsewhere than PostgreSQL it does nothing.
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    if connection.in_atomic_block:
        # Plan once, for good: left to choose, PostgreSQL kept planning the
        # claim's statement afresh at each run (its custom plan looks cheaper
        # than the generic one, whose parameters it cannot fold), which cost
        # ~0.5 ms each time, twice what running it did; forced, 16 claimers
        # did about a third more claims a second. Until the transaction ends.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    previous, raw.prepare_threshold = raw.prepare_threshold, 0
    try:
        yield
    finally:
        raw.prepare_threshold = previous

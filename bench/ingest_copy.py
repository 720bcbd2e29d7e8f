"""The physical limit of intake (``bench.ingest`` step 5): PostgreSQL ``COPY``
of the very rows a batch phase stored, into ``LIKE`` copies of the tables."""

import time

import psycopg


def columns(conn, table_name: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table_name,),
    ).fetchall()
    return [f'"{name}"' for (name,) in rows]


def copy_out(conn, table_name: str, where: str) -> tuple[list[str], bytes, int]:
    cols = columns(conn, table_name)
    data = bytearray()
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY (SELECT {', '.join(cols)} FROM {table_name} WHERE {where}) TO STDOUT"
        ) as copy,
    ):
        for chunk in copy:
            data += chunk
    return cols, bytes(data), data.count(b"\n")


def copy_in(conn, target: str, cols: list[str], data: bytes) -> None:
    sql = f"COPY {target} ({', '.join(cols)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        view = memoryview(data)
        for start in range(0, len(data), 1 << 20):
            copy.write(view[start : start + (1 << 20)])


def measure_copy(database_url: str, phase_prefix: str) -> dict:
    """COPY the rows the first batch phase stored into LIKE copies (same columns,
    indexes and constraints, logged), timing the COPY and its commit."""
    case_filter = f"external_id LIKE '{phase_prefix}%'"
    sources = {
        "reviews_case": case_filter,
        "workbench_trailevent": (
            f'"case" IN (SELECT reference FROM reviews_case WHERE {case_filter})'
        ),
        "reviews_reviewtask": f"case_id IN (SELECT id FROM reviews_case WHERE {case_filter})",
        "reviews_subject": f"id IN (SELECT subject_id FROM reviews_case WHERE {case_filter})",
    }
    out = {}
    with psycopg.connect(database_url) as conn:
        dumps = {name: copy_out(conn, name, where) for name, where in sources.items()}
        conn.commit()
        for name in sources:
            conn.execute(f"CREATE TABLE bench_{name} (LIKE {name} INCLUDING ALL)")
            conn.execute(f"CREATE TABLE bench2_{name} (LIKE {name} INCLUDING ALL)")
        conn.commit()
        conn.execute("CHECKPOINT")

        cols, data, rows = dumps["reviews_case"]
        started = time.perf_counter()
        copy_in(conn, "bench_reviews_case", cols, data)
        conn.commit()
        seconds = time.perf_counter() - started
        out["cases_only"] = {
            "rows": rows,
            "megabytes": round(len(data) / 1e6, 1),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1),
        }
        conn.execute("CHECKPOINT")

        # The same rows as Python values (dicts for jsonb), written with
        # copy.write_row: what an app-side COPY would pay for formatting too.
        cols = columns(conn, "reviews_case")
        types = [
            t
            for (t,) in conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'reviews_case'::regclass AND attnum > 0 AND NOT attisdropped "
                "AND attgenerated = '' ORDER BY attnum"
            ).fetchall()
        ]
        values = conn.execute(
            f"SELECT {', '.join(cols)} FROM reviews_case WHERE {case_filter}"
        ).fetchall()
        conn.execute("CREATE TABLE bench3_reviews_case (LIKE reviews_case INCLUDING ALL)")
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        sql = f"COPY bench3_reviews_case ({', '.join(cols)}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types([t.split("(")[0] for t in types])
            for row in values:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        out["cases_write_row"] = {
            "rows": len(values),
            "seconds": round(seconds, 3),
            "rows_per_s": round(len(values) / seconds, 1),
        }
        conn.execute("DROP TABLE bench3_reviews_case")
        conn.commit()
        conn.execute("CHECKPOINT")

        started = time.perf_counter()
        for name, (cols, data, _) in dumps.items():
            copy_in(conn, f"bench2_{name}", cols, data)
        conn.commit()
        seconds = time.perf_counter() - started
        out["full_footprint"] = {
            "rows": {name: dumps[name][2] for name in dumps},
            "megabytes": round(sum(len(d[1]) for d in dumps.values()) / 1e6, 1),
            "seconds": round(seconds, 3),
            "cases_per_s": round(rows / seconds, 1),
        }
        for name in sources:
            conn.execute(f"DROP TABLE bench_{name}")
            conn.execute(f"DROP TABLE bench2_{name}")
        conn.commit()
    return out

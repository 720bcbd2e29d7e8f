"""`make test`: the suite on PostgreSQL + Redis, then on the embedded default.

Each services run gets a database of its own (pytest-django creates and drops
``test_<name>``). Without PostgreSQL or Redis the services run is skipped with
a warning, unless CI=true, where that fails.
"""

import os
import subprocess
import sys
import uuid

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CI = os.environ.get("CI", "").lower() == "true"


def postgres_problem() -> str:
    import psycopg

    try:
        psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES}: {exc}".strip()
    return ""


def redis_problem() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS}: {exc}"
    return ""


def pytest(env: dict, *args: str) -> int:
    command = [sys.executable, "-m", "pytest", *args, *sys.argv[1:]]
    return subprocess.call(command, env={**os.environ, **env})


def main() -> int:
    failed = []
    problems = [p for p in (postgres_problem(), redis_problem()) if p]
    if problems:
        print("\n".join(f"services run: {p}" for p in problems), file=sys.stderr)
        if CI:
            print("CI=true: the services run cannot be skipped", file=sys.stderr)
            failed.append("services (unavailable)")
        else:
            print("skipping the PostgreSQL + Redis run (set CI=true to fail instead)")
    else:
        run = uuid.uuid4().hex[:8]
        print(f"== PostgreSQL + Redis (database test_workbench_{run})", flush=True)
        env = {
            "DATABASE_URL": f"{POSTGRES}/workbench_{run}",
            "REDIS_URL": REDIS,
            "WORKBENCH_TEST_RUN": run,
            "WORKBENCH_TEST_SERVICES": "1",
        }
        if pytest(env, "--create-db") != 0:
            failed.append("PostgreSQL + Redis")

    print("== embedded default (SQLite, eager Celery)", flush=True)
    env = {"DATABASE_URL": "", "REDIS_URL": "", "WORKBENCH_TEST_SERVICES": "0"}
    if pytest(env, "-m", "not postgres and not services") != 0:
        failed.append("SQLite")

    if failed:
        print(f"FAILED runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all test runs passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

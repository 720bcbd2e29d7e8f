"""The peer for intake: Label Studio 1.23.2 importing the same items, on the
same PostgreSQL, in the same run as ``bench.ingest`` (issue #15).

Label Studio is a labelling tool whose task import is the nearest thing to
Workbench's batch intake that a team would otherwise run: it validates each
task against the project's labelling configuration and stores it in
PostgreSQL. Workbench does more per item (routing, a review task, an
encrypted subject, two trail events), which is the point of the comparison.

It runs from its own virtual environment (never Workbench's), made once:

    python3 -m venv .bench-peers/label-studio
    .bench-peers/label-studio/bin/pip install label-studio==1.23.2 gunicorn 'sentry-sdk<3'

(``sentry-sdk`` 3 refuses an option Label Studio 1.23.2 passes.) Then
``python -m bench.ingest --peer .bench-peers/label-studio`` measures both, or
``python -m bench.labelstudio --peer .bench-peers/label-studio`` the peer
alone. What it does: a scratch database; ``label-studio init`` (migrations,
one user with a legacy API token, a project); gunicorn gthread, 2 workers x 4
threads, as the issue asks; a project whose configuration reads the item's
summary; then ``POST /api/projects/{id}/import`` with the items in requests of
1,000 from 1 and 2 clients, and one item per request from 1 client; gunicorn
stopped and the database dropped at the end.
"""

import json
import os
import queue
import secrets
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.harness import (
    PG_ADMIN_URL,
    CpuSampler,
    arguments,
    parse,
    percentile,
    pg_database_create,
    pg_database_drop,
    results_dir,
    shown,
    table,
    write_results,
)
from bench.payloads import Payloads
from bench.processes import Service, free_port

VERSION = "1.23.2"
LABEL_CONFIG = (
    '<View><Text name="summary" value="$summary"/>'
    '<Choices name="outcome" toName="summary">'
    '<Choice value="approve"/><Choice value="deny"/><Choice value="partial"/>'
    "</Choices></View>"
)


def peer_items(cases: list[dict]) -> list[dict]:
    """Workbench's intake items as Label Studio tasks: the whole item as the
    task's data, with the summary its configuration shows."""
    return [{"data": {"summary": case["output"].get("summary", ""), **case}} for case in cases]


class LabelStudio:
    """A running Label Studio: ``url``, ``headers`` and one ``project``."""

    def __init__(self, venv: Path, log: Path):
        self.venv = venv.resolve()
        self.log = log
        self.token = secrets.token_hex(20)
        self.headers = {"Authorization": f"Token {self.token}"}

    def site_packages(self) -> Path:
        [site] = (self.venv / "lib").glob("python3*/site-packages")
        return site

    def package(self) -> Path:
        return self.site_packages() / "label_studio"

    def version(self) -> str:
        from importlib.metadata import PathDistribution

        [dist] = self.site_packages().glob("label_studio-*.dist-info")
        return PathDistribution(dist).version

    @contextmanager
    def running(self):
        database = pg_database_create("peer_labelstudio")
        port = free_port()
        admin = PG_ADMIN_URL.removeprefix("postgresql://").removeprefix("postgres://")
        user, _, host_port = admin.split("/", 1)[0].rpartition("@")
        host, _, pg_port = host_port.partition(":")
        with tempfile.TemporaryDirectory(prefix="workbench-bench-labelstudio-") as data:
            env = {
                "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
                "HOME": data,
                "DJANGO_DB": "default",
                "POSTGRE_NAME": database,
                "POSTGRE_USER": user or "postgres",
                "POSTGRE_PASSWORD": "",
                "POSTGRE_HOST": host or "127.0.0.1",
                "POSTGRE_PORT": pg_port or "5432",
                "LABEL_STUDIO_BASE_DATA_DIR": data,
                "DJANGO_SETTINGS_MODULE": "label_studio.core.settings.label_studio",
                "DEBUG": "false",
                "LOG_LEVEL": "WARNING",
                "SENTRY_DSN": "",
                "FRONTEND_SENTRY_DSN": "",
            }
            server = None
            try:
                print(f"Label Studio {self.version()}: database {database}, init ...", flush=True)
                init = subprocess.run(
                    [
                        str(self.venv / "bin" / "label-studio"),
                        "init",
                        "bench",
                        "--username",
                        "bench@example.org",
                        "--password",
                        secrets.token_urlsafe(12),
                        "--user-token",
                        self.token,
                        "--enable-legacy-api-token",
                        "--log-level",
                        "WARNING",
                    ],
                    env=env,
                    cwd=data,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                if init.returncode != 0:
                    raise RuntimeError(f"label-studio init failed:\n{init.stderr[-3000:]}")
                self.url = f"http://127.0.0.1:{port}"
                server = Service(
                    "label-studio gunicorn",
                    [
                        [
                            str(self.venv / "bin" / "gunicorn"),
                            "label_studio.core.wsgi:application",
                            "-k",
                            "gthread",
                            "--workers",
                            "2",
                            "--threads",
                            "4",
                            "--timeout",
                            "300",
                            # Label Studio imports its apps as top-level modules.
                            "--chdir",
                            str(self.package()),
                            "-b",
                            f"127.0.0.1:{port}",
                        ]
                    ],
                    env,
                    self.log,
                    ready=self._answers,
                )
                server.start(timeout=120, interval=0.5)
                self.project = self._project_create()
                yield self
            finally:
                if server is not None:
                    server.stop()
                pg_database_drop(database)

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/projects", headers=self.headers, timeout=2).ok
        except requests.RequestException:
            return False

    def _project_create(self) -> int:
        response = requests.post(
            f"{self.url}/api/projects",
            headers=self.headers,
            json={"title": "workbench-peer", "label_config": LABEL_CONFIG},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["id"]

    def import_url(self) -> str:
        return f"{self.url}/api/projects/{self.project}/import"

    def stored(self) -> int:
        response = requests.get(
            f"{self.url}/api/projects/{self.project}", headers=self.headers, timeout=30
        )
        return response.json()["task_number"]


def peer_batches(peer: LabelStudio, bodies: list[bytes], clients: int, items: int) -> dict:
    """POST the pre-encoded requests of 1,000 tasks from ``clients`` clients."""
    work: queue.Queue = queue.Queue()
    for body in bodies:
        work.put(body)
    latencies, errors, lock = [], [], threading.Lock()
    headers = {**peer.headers, "Content-Type": "application/json"}
    imported = [0]

    def client():
        with requests.Session() as session:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                response = session.post(peer.import_url(), data=body, headers=headers, timeout=300)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code != 201:
                        errors.append(f"{response.status_code}: {response.text[:300]}")
                        continue
                    latencies.append(elapsed)
                    imported[0] += response.json()["task_count"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu = CpuSampler()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "items": items,
        "imported": imported[0],
        "errors": errors[:5],
        "error_count": len(errors),
        "seconds": round(seconds, 3),
        "items_per_s": round(imported[0] / seconds, 1),
        "request_p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "cpu": cpu.stop(),
    }


def peer_singles(peer: LabelStudio, bodies: list[bytes]) -> dict:
    """One client, one task per request."""
    latencies, failed = [], 0
    headers = {**peer.headers, "Content-Type": "application/json"}
    with requests.Session() as session:
        started = time.perf_counter()
        for body in bodies:
            began = time.perf_counter()
            response = session.post(peer.import_url(), data=body, headers=headers, timeout=60)
            latencies.append(time.perf_counter() - began)
            failed += response.status_code != 201
        seconds = time.perf_counter() - started
    latencies.sort()
    ms = lambda p: round(percentile(latencies, p) * 1000, 2)  # noqa: E731
    return {
        "clients": 1,
        "requests": len(latencies),
        "failed": failed,
        "req_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
    }


def peer_measure(venv: Path, phases: list[list[dict]], singles: list[dict]) -> dict:
    """Label Studio's import of each phase's items (phase ``i`` with the
    client count ``phase_clients[i]``) and of ``singles`` one at a time."""
    peer = LabelStudio(venv, results_dir() / "labelstudio-gunicorn.log")
    figures: dict = {"version": peer.version(), "server": "gunicorn -k gthread -w 2 --threads 4"}
    with peer.running():
        warm = peer_items(singles[:50])
        peer_batches(peer, [json.dumps(warm).encode()], 1, len(warm))
        figures["batch"] = []
        for clients, cases in phases:
            tasks = peer_items(cases)
            bodies = [json.dumps(tasks[i : i + 1000]).encode() for i in range(0, len(tasks), 1000)]
            print(f"Label Studio import: {len(tasks):,} items, {clients} client(s) ...", flush=True)
            result = peer_batches(peer, bodies, clients, len(tasks))
            print(f"  {result['items_per_s']:,.0f} items/s", flush=True)
            figures["batch"].append(result)
        bodies = [json.dumps(peer_items([case])).encode() for case in singles[50:]]
        print(f"Label Studio import: {len(bodies):,} single items, 1 client ...", flush=True)
        figures["single"] = peer_singles(peer, bodies)
        print(f"  p95 {figures['single']['p95_ms']} ms", flush=True)
        figures["stored"] = peer.stored()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {
            "cases": (50_000, 5_000, "items per batch phase (default 50,000)"),
            "single": (1_000, 300, "single-item requests (default 1,000)"),
        },
        quick_help="5,000 items per phase, 300 single requests",
    )
    parser.add_argument("--peer", required=True, type=Path, help="Label Studio's virtualenv")
    args = parse(parser, argv)
    payloads = Payloads(members=1000)
    phases = [
        (clients, [payloads.case(f"LS-B{clients}-{i:07d}") for i in range(args.cases)])
        for clients in (1, 2)
    ]
    singles = [payloads.case(f"LS-S-{i:07d}") for i in range(args.single + 50)]
    figures = peer_measure(args.peer, phases, singles)
    rows = [
        (f"import, {p['clients']} client(s)", f"{p['items_per_s']:,.0f} items/s", f"{p['items']:,}")
        for p in figures["batch"]
    ]
    single = figures["single"]
    rows.append(("import, 1 item per request", f"p95 {single['p95_ms']} ms", single["requests"]))
    print(table(rows, ("Label Studio " + figures["version"], "rate", "items")))
    path = write_results("labelstudio.json", figures)
    print(f"figures written to {shown(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

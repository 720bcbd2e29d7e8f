import json
import signal
import threading
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from workbench.services.trail import trail_sequencer_run


class Command(BaseCommand):
    help = (
        "Run the trail's sequencer: move committed pending events into the chain, "
        "woken by the writers' commits (LISTEN/NOTIFY) with a periodic sweep, and sign "
        "the checkpoints that are due (PostgreSQL; the embedded default needs none)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sweep", type=float, default=None, help="seconds between sweeps when not woken"
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=0,
            help="serve this process's Prometheus metrics (the merge delay) on this port",
        )

        parser.add_argument(
            "--delays-out",
            default="",
            help="on stopping, write the merge delays measured (seconds, JSON) to this file",
        )

    def handle(self, *args, sweep=None, metrics_port=0, delays_out="", **options):
        if connection.vendor != "postgresql":
            self.stdout.write("SQLite: events are chained in their change's transaction")
            return
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr="127.0.0.1")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("trail sequencer running")
        trail_sequencer_run(stop=stop, sweep=sweep)
        if delays_out:
            from workbench.services.trail.sequencer import recent_delays

            Path(delays_out).write_text(json.dumps(list(recent_delays)))
        self.stdout.write("trail sequencer stopped")

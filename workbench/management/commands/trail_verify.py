import time

from django.core.management.base import BaseCommand, CommandError

from workbench.services import trail_verify


class Command(BaseCommand):
    help = "Recompute the decision trail's hash chain and checkpoint signatures."

    def handle(self, *args, **options):
        started = time.perf_counter()
        result = trail_verify()
        seconds = time.perf_counter() - started
        if not result.ok:
            raise CommandError(
                f"trail broken at seq {result.first_bad_seq}: {result.problem} "
                f"({result.checked} events before it verified)"
            )
        rate = result.checked / seconds if seconds else 0
        self.stdout.write(
            f"trail OK: {result.checked} events, head seq {result.head_seq}, "
            f"{result.checkpoints} signed checkpoints ({seconds:.2f} s, {rate:,.0f} events/s)"
        )

import sys

from django.core.management.base import CommandError

from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand, command_day
from workbench.services.export import (
    ExportFilters,
    export_file_name,
    export_plan,
    export_record,
    export_stream,
)


class Command(OperatorCommand):
    help = (
        "Export the decision trail: a bundle anyone can verify offline with "
        "`python -m workbench.verify` (docs/bundle.md), or the events as JSON lines or CSV."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (UTC)")
        parser.add_argument("--system", help="only this AI system's events")
        parser.add_argument("--case", help="only this case's events (its reference)")
        parser.add_argument("--format", choices=["bundle", "jsonl", "csv"], default="bundle")
        parser.add_argument(
            "--output", "-o", help="file to write (default: a name like the filters); - for stdout"
        )

    def handle(self, *args, date_from, date_to, system, case, format, output, **options):
        actor = self.operator(options)
        try:
            filters = ExportFilters(
                date_from=command_day(date_from) if date_from else None,
                date_to=command_day(date_to) if date_to else None,
                system=system,
                case=case,
            )
            plan = export_plan(filters)
        except WorkbenchError as error:
            raise CommandError(error.message) from None
        name = output or export_file_name(plan, format)
        last = [0]

        def progress(done: int) -> None:
            if plan.count and (done - last[0] >= 100_000 or done == plan.count):
                last[0] = done
                self.stderr.write(f"  {done:,} / {plan.count:,} events")

        out = sys.stdout.buffer if name == "-" else open(name, "wb")  # noqa: SIM115
        try:
            for chunk in export_stream(plan, format, progress=progress):
                out.write(chunk)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        export_record(plan=plan, fmt=format, actor=actor)
        if name != "-":
            self.stderr.write(
                f"wrote {name}: {plan.count:,} events ({plan.kind}, seq "
                f"{plan.first_seq}..{plan.last_seq})"
            )

from django.core.management.base import BaseCommand, CommandError

from workbench.management.base import command_day
from workbench.metrics import transparency_render


class Command(BaseCommand):
    help = (
        "Write the transparency report (DSA Art. 24) of a range of UTC days: decisions, "
        "share automated, complaints by basis and outcome, median times, reversals."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--format", choices=["csv", "html"], default="csv")
        parser.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args, **options):
        start, end = command_day(options["start"]), command_day(options["end"])
        if start > end:
            raise CommandError("--from is after --to")
        text = transparency_render(start=start, end=end, fmt=options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as f:
                f.write(text)
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")

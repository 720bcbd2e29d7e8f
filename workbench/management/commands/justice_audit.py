from django.core.management.base import BaseCommand, CommandError

from workbench.errors import NotFound
from workbench.management.base import command_day
from workbench.metrics.charts import default_range
from workbench.metrics.scorecard import justice_scorecard_for, scorecard_render


class Command(BaseCommand):
    help = (
        "Write the justice audit scorecard of one AI system over a range of UTC days "
        "(default: the last 30): distributive, procedural and interactional lines, the "
        "connection index and its parts, as CSV or a printable HTML page."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the AI system's slug")
        parser.add_argument("--from", dest="start", help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", help="last day, YYYY-MM-DD")
        parser.add_argument(
            "--model-version",
            dest="model_version",
            default="",
            help="one model version (default: all)",
        )
        parser.add_argument("--format", choices=["csv", "html"], default="csv")
        parser.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args, **options):
        start, end = default_range()
        if options["end"]:
            end = command_day(options["end"])
            if not options["start"]:
                start = end.fromordinal(end.toordinal() - 29)
        if options["start"]:
            start = command_day(options["start"])
        if start > end:
            raise CommandError("--from is after --to")
        try:
            card = justice_scorecard_for(
                slug=options["slug"], start=start, end=end, model_version=options["model_version"]
            )
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        text = scorecard_render(card, fmt=options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as f:
                f.write(text)
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")

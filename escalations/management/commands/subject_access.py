import sys

from django.core.management.base import CommandError

from escalations.services.access import subject_access_export
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Everything about one subject (cases, decisions, appeals, evidence and a "
        "verifiable bundle of their trail events) as one zip, for an access request."
    )

    def add_arguments(self, parser):
        parser.add_argument("reference", help="the subject's reference")
        parser.add_argument("--system", help="the AI system's slug, if several know the subject")
        parser.add_argument(
            "--output", "-o", help="file to write (default SUBJECT.zip); - for stdout"
        )

    def handle(self, *args, reference, system, output, **options):
        actor = self.operator(options)
        try:
            chunks = subject_access_export(reference=reference, system=system, by=actor)
        except WorkbenchError as error:
            raise CommandError(f"{error.message} ({error.code})") from None
        name = output or f"subject-{reference}.zip"
        out = sys.stdout.buffer if name == "-" else open(name, "wb")  # noqa: SIM115
        try:
            for chunk in chunks:
                out.write(chunk)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        if name != "-":
            self.stderr.write(f"wrote {name}")

from django.core.management.base import CommandError

from escalations.services import subject_erase
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Erase a subject's personal data (contact details, appeal statements, evidence) "
        "by destroying their key. Refused while an appeal window or a legal hold is open."
    )

    def add_arguments(self, parser):
        parser.add_argument("reference", help="the subject's reference, as the AI system gave it")
        parser.add_argument("--system", help="the AI system's slug, if several know the subject")

    def handle(self, *args, reference, system, **options):
        actor = self.operator(options)
        try:
            erased = subject_erase(reference=reference, system=system, by=actor)
        except WorkbenchError as error:
            raise CommandError(f"{error.message} ({error.code})") from None
        if erased.already:
            self.stdout.write(f"subject {reference} was erased already")
            return
        self.stdout.write(
            f"erased subject {reference}: key destroyed; {erased.cases} cases, "
            f"{erased.appeals} appeal statements, {erased.files} evidence files"
        )

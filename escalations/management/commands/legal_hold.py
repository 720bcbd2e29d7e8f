from django.core.management.base import CommandError

from escalations.services import legal_hold_lift, legal_hold_place
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand


class Command(OperatorCommand):
    help = "Place (or --lift) a legal hold on a subject: their data may not be erased meanwhile."

    def add_arguments(self, parser):
        parser.add_argument("reference", help="the subject's reference")
        parser.add_argument("--system", help="the AI system's slug, if several know the subject")
        parser.add_argument("--reason", default="", help="why the data must be kept")
        parser.add_argument("--lift", action="store_true", help="lift the hold instead")

    def handle(self, *args, reference, system, reason, lift, **options):
        actor = self.operator(options)
        try:
            if lift:
                legal_hold_lift(reference=reference, system=system, by=actor)
                self.stdout.write(f"lifted the hold on {reference}")
            else:
                legal_hold_place(reference=reference, system=system, reason=reason, by=actor)
                self.stdout.write(f"placed a hold on {reference}")
        except WorkbenchError as error:
            raise CommandError(f"{error.message} ({error.code})") from None

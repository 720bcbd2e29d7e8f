from django.core.management.base import CommandError

from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand
from workbench.models import AISystem, APIKey
from workbench.services import api_key_create


class Command(OperatorCommand):
    help = "Add an API key to an AI system (printed last, shown once)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--scope", default=APIKey.Scope.INGEST, choices=APIKey.Scope.values)
        parser.add_argument(
            "--only-system",
            action="store_true",
            help="a compliance key that reads only this system's trail events, each with "
            "its inclusion proof (without it a compliance key reads the whole chain)",
        )

    def handle(self, *args, slug, scope, only_system, **options):
        system = AISystem.objects.filter(slug=slug).first()
        if system is None:
            raise CommandError(f"no AI system {slug!r}")
        try:
            issued = api_key_create(
                system=system,
                scope=scope,
                only_system=only_system,
                actor=self.operator(options),
            )
        except WorkbenchError as exc:
            raise CommandError(exc.message) from None
        limited = ", its own events only" if only_system else ""
        self.stdout.write(f"{scope} key for {slug}{limited}; store it now, it is not shown again:")
        self.stdout.write(issued.plaintext)

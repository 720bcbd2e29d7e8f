"""The kill switch at the command line (DESIGN §5a): stop_ai_system and
start_ai_system, the same service as the supervisor board."""

from django.core.management.base import CommandError

from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand
from workbench.models import AISystem
from workbench.services import ai_system_set_stopped


class SwitchCommand(OperatorCommand):
    stopped: bool

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the AI system's slug")
        parser.add_argument(
            "--reason",
            required=True,
            help="why (required; kept readable for supervisors and compliance)",
        )

    def handle(self, *args, slug, reason, **options):
        actor = self.operator(options)
        system = AISystem.objects.filter(slug=slug).first()
        if system is None:
            raise CommandError(f"no AI system {slug!r}")
        was = system.stopped
        try:
            system = ai_system_set_stopped(
                system=system, stopped=self.stopped, reason=reason, actor=actor
            )
        except WorkbenchError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        if was == self.stopped:
            state = "stopped" if self.stopped else "running"
            self.stdout.write(f"{slug} is {state} already; nothing changed")
        elif self.stopped:
            self.stdout.write(f"stopped {slug}: every case it sends goes to a person")
        else:
            self.stdout.write(f"started {slug}: its policy routes its cases again")

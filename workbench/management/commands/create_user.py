from django.core.management.base import CommandError

from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand
from workbench.models import Role
from workbench.services import user_create


class Command(OperatorCommand):
    help = "Create a user in one role, optionally reporting to a manager."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password")
        parser.add_argument("--manager", help="username of the user's manager")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password, manager, email, **options):
        try:
            user = user_create(
                username=username,
                role=role,
                password=password,
                manager=manager,
                email=email,
                actor=self.operator(options),
            )
        except WorkbenchError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"created {role} {user.username}")

from django.core.management.base import BaseCommand, CommandError

from workbench.errors import WorkbenchError
from workbench.models import AISystem
from workbench.services import Actor, ai_system_create, api_key_create


class Command(BaseCommand):
    help = "Create an AI system and one API key (printed last, shown once)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", required=True, choices=AISystem.Kind.values)
        parser.add_argument("--callback-url", default="")
        parser.add_argument("--callback-secret", default="")
        parser.add_argument("--purpose", default="", help="the system's intended purpose")

    def handle(self, *args, slug, name, kind, callback_url, callback_secret, purpose, **options):
        actor = Actor.workbench("manage.py")
        try:
            system = ai_system_create(
                slug=slug,
                name=name,
                kind=kind,
                callback_url=callback_url,
                callback_secret=callback_secret,
                intended_purpose=purpose,
                actor=actor,
            )
            issued = api_key_create(system=system, actor=actor)
        except WorkbenchError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"created AI system {system.slug} ({system.kind})")
        if not callback_secret:
            self.stdout.write(f"callback_secret: {system.callback_secret}")
        self.stdout.write(issued.plaintext)

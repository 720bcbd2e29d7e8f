from django.core.management.base import CommandError

from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand
from workbench.models import AISystem
from workbench.services import ai_system_create, api_key_create
from workbench.services.webhooks import OPTIONAL_TOPICS


def topics_list(value: str) -> list[str]:
    return [topic.strip() for topic in value.split(",") if topic.strip()]


class Command(OperatorCommand):
    help = "Create an AI system and one API key (printed last, shown once)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", required=True, choices=AISystem.Kind.values)
        parser.add_argument("--callback-url", default="")
        parser.add_argument("--callback-secret", default="")
        parser.add_argument("--purpose", default="", help="the system's intended purpose")
        parser.add_argument(
            "--webhook-topics",
            type=topics_list,
            default=[],
            help="optional webhook topics to send besides the final outcomes, comma-separated: "
            + ", ".join(OPTIONAL_TOPICS),
        )

    def handle(
        self,
        *args,
        slug,
        name,
        kind,
        callback_url,
        callback_secret,
        purpose,
        webhook_topics,
        **options,
    ):
        actor = self.operator(options)
        try:
            system = ai_system_create(
                slug=slug,
                name=name,
                kind=kind,
                callback_url=callback_url,
                callback_secret=callback_secret,
                intended_purpose=purpose,
                webhook_topics=webhook_topics,
                actor=actor,
            )
            issued = api_key_create(system=system, actor=actor)
        except WorkbenchError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"created AI system {system.slug} ({system.kind})")
        if not callback_secret:
            self.stdout.write(f"callback_secret: {system.callback_secret}")
        self.stdout.write(issued.plaintext)

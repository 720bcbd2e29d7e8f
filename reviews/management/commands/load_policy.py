from pathlib import Path

from django.core.management.base import CommandError

from reviews.services import policy_publish
from reviews.services.policies import policy_parse
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand


def policy_read(path: Path) -> dict:
    """A policy file, YAML or JSON (by its suffix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    try:
        return policy_parse(text, name=str(path))
    except WorkbenchError as exc:
        raise CommandError(exc.message.removeprefix("the policy is invalid:\n- ")) from None


class Command(OperatorCommand):
    help = "Publish a new version of an AI system's routing policy (YAML or JSON)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file, **options):
        actor = self.operator(options)
        document = policy_read(file)
        try:
            published = policy_publish(document=document, actor=actor)
        except WorkbenchError as exc:
            raise CommandError(f"{file}: {exc.message}") from None
        policy = published.policy
        if published.created:
            self.stdout.write(f"published {policy.system.slug} policy version {policy.version}")
            if policy.document.get("appeal_queue") is None:
                self.stderr.write(
                    "warning: the policy declares no queue with the appeal_reviewer role, "
                    "so customers' appeals are refused until one exists"
                )
        else:
            self.stdout.write(
                f"unchanged: {policy.system.slug} policy version {policy.version} is in force"
            )

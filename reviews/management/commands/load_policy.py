import json
from pathlib import Path

import yaml
from django.core.management.base import CommandError

from reviews.services import policy_publish
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand


def policy_read(path: Path) -> dict:
    """A policy file, YAML or JSON (by its suffix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CommandError(
            f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}"
        ) from None


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
        else:
            self.stdout.write(
                f"unchanged: {policy.system.slug} policy version {policy.version} is in force"
            )

"""What every command that changes things shares: it names its operator (and
the commands that take a range of days read them one way, ``command_day``).

A person at the server's command line is a person: the trail records them
as ``{"type": "user", "id": <--actor>}``, by default the account they are
logged in as. Actor type ``workbench`` stays for scheduled and internal work
(beat, the demo loader)."""

import getpass
import unicodedata
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from workbench.services import Actor

ACTOR_MAX = 150  # as a username


def command_day(text: str) -> date:
    """A ``--from``/``--to`` day (YYYY-MM-DD), or a CommandError that names it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None


def operator_actor(name: str | None) -> Actor:
    """The trail's actor for an operator named ``name``, else the OS user."""
    if name is None:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no login name, no passwd entry
            raise CommandError(
                "cannot tell who runs this command: name yourself with --actor"
            ) from None
    name = name.strip()
    if not name:
        raise CommandError("--actor needs a name: who runs this command")
    if len(name) > ACTOR_MAX or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise CommandError(
            f"--actor is a name of at most {ACTOR_MAX} printable characters, not {name[:40]!r}"
        )
    return Actor("user", name)


class OperatorCommand(BaseCommand):
    """A command run by a person: adds ``--actor`` (default: the OS user) and
    ``self.operator(options)``, the actor its service calls record."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--actor",
            help="who runs this, as the decision trail names them (default: your OS user name)",
        )
        return parser

    def operator(self, options: dict) -> Actor:
        return operator_actor(options.get("actor"))

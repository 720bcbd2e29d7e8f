import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from escalations.demo import demo_work_load
from reviews.demo import DEMO_PASSWORD, demo_load
from workbench.errors import WorkbenchError


class Command(BaseCommand):
    help = (
        "Load the demo: two AI systems with their policies and queues, one user per "
        "role and a few hundred cases, some decided by the demo reviewers, contested by "
        "their AI system or appealed by their customers, and some appeals decided. Does "
        "nothing when the demo is loaded already."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--cases", type=int, default=300, help="how many cases, half claims and half chats"
        )

    def handle(self, *args, cases, **options):
        if cases < 0:
            raise CommandError("--cases must be 0 or more")
        started = time.monotonic()
        try:
            summary = demo_load(cases=cases)
            work = demo_work_load() if summary.loaded else None
        except WorkbenchError as exc:
            raise CommandError(exc.message) from None
        if not summary.loaded:
            self.stdout.write(
                f"demo data already loaded (AI systems {', '.join(summary.existing)} exist); "
                "nothing changed"
            )
            return
        elapsed = time.monotonic() - started
        write = self.stdout.write
        write(f"loaded the demo in {elapsed:.1f} s")
        for slug, version in summary.policies.items():
            counts = {s: n for (system, s), n in summary.cases.items() if system == slug}
            detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            write(f"  {slug}: policy version {version}, {sum(counts.values())} cases ({detail})")
        write("")
        write(f"users (password for all: {DEMO_PASSWORD})")
        write(f"  {'username':<14}{'role':<17}manager")
        for user in summary.users:
            note = (
                "  (exists already, left unchanged)"
                if user.username in summary.skipped_users
                else ""
            )
            write(f"  {user.username:<14}{user.role:<17}{user.manager or '-'}{note}")
        write("")
        write("reviewer teams (queue members; nobody else works these queues):")
        for slug, (queues, members) in summary.teams.items():
            write(f"  {slug}: {', '.join(members) or '-'} ({', '.join(queues)})")
        write("")
        outcomes = Counter(work.appeals_decided.values())
        write(
            f"the demo reviewers decided {len(work.decided)} claims and chats; "
            f"{len(work.appealed)} are appealed: appeal.carol decided {len(work.appeals_decided)} "
            f"({', '.join(f'{n} {o}' for o, n in sorted(outcomes.items())) or 'none'}), "
            f"{len(work.appeals_open)} wait for her (queues 'appeals' and 'chat-appeals')"
        )
        write(
            f"the AI systems contested {len(work.contested)} decisions they made alone, "
            "for their customers; the systems' reviewers took them up"
        )
        write(
            f"customers opened {work.opened} notices and answered the two questions "
            f"{work.answered.get('human', 0)} times after a person's decision, "
            f"{work.answered.get('ai', 0)} after the AI's"
        )
        links = work.notice_links()
        if links:
            write("customer notice links (no login):")
            for url, what in links:
                write(f"  {url}  ({what})")
        write("")
        write("API keys (shown once):")
        for slug, key in summary.keys.items():
            write(f"{slug} ingest key: {key}")

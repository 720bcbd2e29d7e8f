"""Who works a queue: its members (DESIGN §3)."""

from django.db import transaction

from reviews.models import Queue
from workbench.errors import Invalid
from workbench.models import User
from workbench.services import Actor, trail_append


@transaction.atomic
def queue_members_set(*, queue: Queue, users: list[User], actor: Actor) -> list[str]:
    """Make ``users`` the members of ``queue`` (none: everyone with its role
    works it again). Each must be active and hold the queue's role; else a
    clear error and nothing is written. Recorded (``queue.members_changed``).
    Returns the members' usernames."""
    wanted = {user.pk: user for user in users}
    fresh = {
        user.pk: user
        for user in User.objects.filter(pk__in=list(wanted)).prefetch_related("groups")
    }
    problems = []
    for pk, user in sorted(wanted.items(), key=lambda item: item[1].username):
        current = fresh.get(pk)
        if current is None:
            problems.append(f"there is no user {user.username!r}")
        elif not current.is_active:
            problems.append(
                f"{current.username} is not active: an inactive user cannot be a member"
            )
        elif not current.has_role(queue.role):
            problems.append(f"{current.username} does not have the {queue.role} role of this queue")
    if problems:
        raise Invalid(
            "; ".join(problems),
            "bad_member",
            fields=[{"path": "members", "message": problem} for problem in problems],
        )
    queue = Queue.objects.select_for_update().select_related("system").get(pk=queue.pk)
    before = sorted(queue.members.values_list("username", flat=True))
    queue.members.set(list(fresh.values()))
    after = sorted(user.username for user in fresh.values())
    if before != after:
        trail_append(
            action="queue.members_changed",
            actor=actor,
            system=queue.system.slug,
            data={"queue": queue.slug, "members": after, "before": before},
        )
    return after

"""Users and their roles."""

from django.contrib.auth.models import Group
from django.db import transaction

from workbench.errors import Conflict, Invalid, NotFound
from workbench.models import Role, User
from workbench.selectors import manager_cycle
from workbench.services.trail import Actor, trail_append


def user_manager_check(*, user: User | None, manager: User | None) -> None:
    """Refuse a manager that would close a loop in the reporting line (the
    user would be above themselves): independence is walked along it."""
    if manager is None:
        return
    if (
        user is not None
        and user.pk is not None
        and manager_cycle(user_id=user.pk, manager_id=manager.pk)
    ):
        raise Invalid(
            f"{manager.username} cannot be the manager of {user.username}: "
            f"{user.username} is {manager.username} or above them in the reporting line, "
            "which would make a loop",
            "manager_cycle",
        )


@transaction.atomic
def user_create(
    *,
    username: str,
    role: str,
    actor: Actor,
    password: str | None = None,
    manager: str | None = None,
    email: str = "",
) -> User:
    """Create a user in one role group, optionally reporting to ``manager``."""
    if role not in Role.values:
        raise Invalid(f"unknown role {role!r}; use one of {', '.join(Role.values)}", "bad_role")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"a user {username!r} exists already", "user_exists")
    boss = None
    if manager:
        boss = User.objects.filter(username=manager).first()
        if boss is None:
            raise NotFound(f"no manager {manager!r}", "unknown_manager")
    user_manager_check(user=None, manager=boss)  # a new user has no reports: no loop
    user = User(username=username, email=email, manager=boss)
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    trail_append(
        action="user.created",
        actor=actor,
        data={"username": username, "role": role, "manager": manager},
    )
    return user


@transaction.atomic
def user_change_record(*, user: User, actor: Actor, created: bool, fields: list[str]) -> None:
    """Record a change of a user made in the admin: which fields changed
    (their names, never their values), and the roles, reporting line and
    standing after it."""
    trail_append(
        action="user.created" if created else "user.changed",
        actor=actor,
        data={
            "username": user.username,
            "changed": sorted(fields),
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "manager": user.manager.username if user.manager_id else None,
            "active": user.is_active,
        },
    )


@transaction.atomic
def user_manager_set(*, user: User, manager: User | None, actor: Actor) -> User:
    """Change who ``user`` reports to; a loop is refused, nothing written."""
    user = User.objects.select_for_update().get(pk=user.pk)
    user_manager_check(user=user, manager=manager)
    user.manager = manager
    user.save(update_fields=["manager"])
    user_change_record(user=user, actor=actor, created=False, fields=["manager"])
    return user

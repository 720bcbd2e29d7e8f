"""The reporting line: walked whole, up and down, and never a loop."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests import factories
from workbench.admin_forms import UserChangeWithLineForm
from workbench.errors import Invalid
from workbench.models import TrailEvent, User
from workbench.selectors import manager_cycle, reporting_line
from workbench.services import Actor
from workbench.services.users import user_manager_set

ACTOR = Actor.workbench("tests")


@pytest.fixture
def line(db):
    """top <- middle <- alice <- junior <- intern; aside reports to top too."""
    make = factories.UserFactory
    top = make(username="top", role="appeal_reviewer")
    middle = make(username="middle", role="supervisor", manager=top)
    alice = make(username="alice", role="reviewer", manager=middle)
    junior = make(username="junior", role="reviewer", manager=alice)
    intern = make(username="intern", role="reviewer", manager=junior)
    aside = make(username="aside", role="reviewer", manager=top)
    return {u.username: u for u in (top, middle, alice, junior, intern, aside)}


def names(ids) -> set[str]:
    return set(User.objects.filter(pk__in=ids).values_list("username", flat=True))


def test_the_line_goes_all_the_way_up_and_down(line):
    assert names(reporting_line(user_ids=[line["alice"].pk])) == {
        "top",
        "middle",
        "alice",
        "junior",
        "intern",
    }
    # A colleague under the same top manager is not in alice's line.
    assert "aside" not in names(reporting_line(user_ids=[line["alice"].pk]))
    assert names(reporting_line(user_ids=[line["intern"].pk])) == {
        "top",
        "middle",
        "alice",
        "junior",
        "intern",
    }
    assert reporting_line(user_ids=[]) == set()


def test_a_loop_already_in_the_data_ends_the_walk(line):
    # Written past validation (e.g. by hand in the database): the walk still ends.
    User.objects.filter(pk=line["top"].pk).update(manager=line["intern"])
    # Everyone on the loop is above and below alice, and so is all under it.
    assert names(reporting_line(user_ids=[line["alice"].pk])) == set(line)


@pytest.mark.parametrize("manager", ["alice", "junior", "intern"])
def test_a_manager_below_or_oneself_is_a_loop(line, manager):
    assert manager_cycle(user_id=line["alice"].pk, manager_id=line[manager].pk)
    assert not manager_cycle(user_id=line["alice"].pk, manager_id=line["aside"].pk)


def test_the_service_refuses_a_loop_and_writes_nothing(line):
    before = TrailEvent.objects.count()
    with pytest.raises(Invalid) as refused:
        user_manager_set(user=line["middle"], manager=line["intern"], actor=ACTOR)
    assert refused.value.code == "manager_cycle"
    assert User.objects.get(pk=line["middle"].pk).manager == line["top"]
    assert TrailEvent.objects.count() == before

    user_manager_set(user=line["intern"], manager=line["aside"], actor=ACTOR)
    assert User.objects.get(pk=line["intern"].pk).manager == line["aside"]
    assert TrailEvent.objects.filter(action="user.changed").count() == 1


def test_the_admin_form_refuses_a_loop(line, rf):
    from django.contrib import admin

    model_admin = admin.site._registry[User]
    assert issubclass(model_admin.form, UserChangeWithLineForm)
    request = rf.get("/admin/")
    request.user = factories.UserFactory(is_staff=True, is_superuser=True)
    middle = line["middle"]
    Form = model_admin.get_form(request, middle)
    form = Form(data={"manager": line["junior"].pk}, instance=middle)
    form.is_valid()
    assert "loop" in " ".join(form.errors["manager"])
    assert User.objects.get(pk=middle.pk).manager == line["top"]


def test_create_user_names_an_unknown_manager_and_writes_nothing(db):
    before = TrailEvent.objects.count()
    with pytest.raises(CommandError, match="no manager"):
        call_command(
            "create_user", "solo", "--role", "reviewer", "--manager", "solo", stdout=StringIO()
        )
    assert not User.objects.filter(username="solo").exists()
    assert TrailEvent.objects.count() == before

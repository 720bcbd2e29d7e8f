from tests import factories
from workbench.models import APIKey, TrailEvent
from workbench.services import api_key_create


def test_an_admin_revokes_a_key_and_it_stops_working_at_once(system, admin_client):
    issued = api_key_create(system=system, actor=factories.ACTOR)
    client = factories.api_client(system)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {issued.plaintext}"
    assert client.get("/api/v1/cases/WB-NONE-0000").status_code == 404

    response = admin_client.post(
        "/admin/workbench/apikey/",
        {"action": "revoke", "_selected_action": [issued.key.pk]},
    )
    assert response.status_code == 302
    assert APIKey.objects.get(pk=issued.key.pk).revoked_at is not None
    assert TrailEvent.objects.filter(action="system.key_revoked").count() == 1
    assert client.get("/api/v1/cases/WB-NONE-0000").status_code == 401


def test_the_admin_never_shows_a_key_secret(system, admin_client):
    issued = api_key_create(system=system, actor=factories.ACTOR)
    page = admin_client.get(f"/admin/workbench/apikey/{issued.key.pk}/change/").content.decode()
    assert issued.key.secret_hash not in page
    assert issued.plaintext.split("_", 2)[2] not in page


def test_a_role_and_a_password_changed_in_the_admin_are_in_the_trail(db, admin_client):
    from django.contrib.auth.models import Group

    from workbench.models import User
    from workbench.selectors import trail_event_as_dict

    alice = factories.UserFactory(username="rev.alice", role="reviewer")
    supervisor = Group.objects.get_or_create(name="supervisor")[0]
    page = admin_client.get(f"/admin/workbench/user/{alice.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("password", "groups", "user_permissions")
    }
    data.update(
        groups=[g.pk for g in alice.groups.all()] + [supervisor.pk],
        date_joined_0=alice.date_joined.strftime("%Y-%m-%d"),
        date_joined_1=alice.date_joined.strftime("%H:%M:%S"),
        last_login_0="",
        last_login_1="",
        manager="",
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = admin_client.post(f"/admin/workbench/user/{alice.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = trail_event_as_dict(TrailEvent.objects.get(action="user.changed"))
    assert changed["data"]["username"] == "rev.alice"
    assert changed["data"]["roles"] == ["reviewer", "supervisor"]
    assert changed["actor"]["type"] == "user"

    response = admin_client.post(
        f"/admin/workbench/user/{alice.pk}/password/",
        {
            "password1": "a-new-long-passphrase-1",
            "password2": "a-new-long-passphrase-1",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    events = TrailEvent.objects.filter(action="user.changed").order_by("seq")
    assert events.count() == 2
    last = trail_event_as_dict(events.last())["data"]
    assert last["changed"] and "passphrase" not in str(last)
    assert User.objects.get(pk=alice.pk).check_password("a-new-long-passphrase-1")


def test_users_are_deactivated_not_deleted_and_groups_are_not_edited(db, admin_client):
    alice = factories.UserFactory(username="rev.alice", role="reviewer")
    assert admin_client.get(f"/admin/workbench/user/{alice.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/auth/group/").status_code == 404

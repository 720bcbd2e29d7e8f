import logging
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from standardwebhooks import Webhook

from tests import factories
from workbench.models import AISystem, APIKey, DeliveryAttempt, SystemSwitch, TrailEvent
from workbench.selectors import trail_event_as_dict
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


# --- AI systems, run from the admin -----------------------------------------------------------


def change_url(system) -> str:
    return f"/admin/workbench/aisystem/{system.pk}/change/"


def system_form(system, **changes) -> dict:
    data = {
        "name": system.name,
        "intended_purpose": system.intended_purpose,
        "callback_url": system.callback_url,
        "webhook_topics": list(system.webhook_topics),
        # The inlines' management forms (read-only, nothing to add).
        "switches-TOTAL_FORMS": "0",
        "switches-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def staff(db):
    """A staff user who may change AI systems and API keys in Django's terms,
    but does not hold the admin role."""
    user = factories.UserFactory(username="ops.olga", role="supervisor")
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_aisystem", "change_aisystem", "view_apikey", "change_apikey"]
        )
    )
    return factories.client_for(user)


def test_an_admin_edits_a_system_in_one_event_that_names_them_and_the_fields(
    system, admin_client, admin_user, receiver
):
    page = admin_client.get(change_url(system))
    assert page.status_code == 200
    assert system.callback_secret not in page.content.decode()

    response = admin_client.post(
        change_url(system),
        system_form(
            system,
            name="Claims triage",
            intended_purpose="Triage of health claims",
            callback_url=receiver.url,
            webhook_topics=["case.routed", "appeal.filed"],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    system.refresh_from_db()
    assert (system.name, system.callback_url) == ("Claims triage", receiver.url)
    assert system.webhook_topics == ["case.routed", "appeal.filed"]
    [event] = TrailEvent.objects.filter(action="system.changed")
    event = trail_event_as_dict(event)
    assert event["actor"] == {"type": "user", "id": admin_user.username}
    assert event["data"]["changed"] == [
        "callback_url",
        "intended_purpose",
        "name",
        "webhook_topics",
    ]
    assert event["data"]["callback_url"] == receiver.url
    assert "Triage of health claims" not in str(event)  # by its digest
    assert system.callback_secret not in str(event)

    # Saved again unchanged: no event.
    assert admin_client.post(change_url(system), system_form(system)).status_code == 302
    assert TrailEvent.objects.filter(action="system.changed").count() == 1


def test_a_private_callback_url_is_refused_in_the_form_naming_the_problem(
    system, admin_client, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        change_url(system), system_form(system, callback_url="https://169.254.169.254/latest")
    )
    assert response.status_code == 200
    assert "link-local address" in response.content.decode()
    assert AISystem.objects.get(pk=system.pk).callback_url == ""
    assert not TrailEvent.objects.filter(action="system.changed").exists()


def test_an_unknown_topic_is_refused_in_the_form(system, admin_client):
    response = admin_client.post(
        change_url(system), system_form(system, webhook_topics=["case.exploded"])
    )
    assert response.status_code == 200
    assert "case.exploded" in response.content.decode()
    assert AISystem.objects.get(pk=system.pk).webhook_topics == []


def test_stop_and_restart_need_a_reason_kept_readable_and_shown(system, admin_client, sam):
    url = f"/admin/workbench/aisystem/{system.pk}/switch/"
    assert "Stop claims-ai" in admin_client.get(url).content.decode()
    refused = admin_client.post(url, {"stopped": "1", "reason": "  "})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert not AISystem.objects.get(pk=system.pk).stopped

    reason = "Model drift: approvals doubled overnight"
    response = admin_client.post(url, {"stopped": "1", "reason": reason})
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.stopped and system.switch_reason == reason and system.switched_by == "admin"
    [switch] = SystemSwitch.objects.all()
    assert (switch.stopped, switch.reason, switch.actor_type) == (True, reason, "user")
    event = trail_event_as_dict(TrailEvent.objects.get(action="system.stopped"))
    assert event["actor"] == {"type": "user", "id": "admin"}
    assert reason not in str(event)  # the trail holds the digest
    assert reason in admin_client.get(change_url(system)).content.decode()
    board = factories.client_for(sam).get("/supervisor/").content.decode()
    assert reason in board and "by admin" in board

    admin_client.post(url, {"stopped": "0", "reason": "Retrained and checked"})
    system.refresh_from_db()
    assert not system.stopped and system.switch_reason == "Retrained and checked"
    assert SystemSwitch.objects.count() == 2  # the stop's reason stays readable


def test_a_rotated_secret_is_shown_once_and_never_again(system, admin_client, caplog):
    url = f"/admin/workbench/aisystem/{system.pk}/rotate-secret/"
    old = system.callback_secret
    assert old not in admin_client.get(url).content.decode()
    with caplog.at_level(logging.DEBUG):
        response = admin_client.post(url)
    system.refresh_from_db()
    assert system.callback_secret != old
    page = response.content.decode()
    assert system.callback_secret in page and "not shown again" in page
    assert "no-store" in response["Cache-Control"]
    assert system.callback_secret not in caplog.text
    assert system.callback_secret not in admin_client.get(change_url(system)).content.decode()
    event = TrailEvent.objects.get(action="system.secret_rotated")
    assert system.callback_secret not in event.body and old not in event.body
    assert trail_event_as_dict(event)["actor"] == {"type": "user", "id": "admin"}


def test_an_api_key_made_in_the_admin_is_shown_once_and_works(system, admin_client):
    url = f"/admin/workbench/aisystem/{system.pk}/new-key/"
    response = admin_client.post(url, {"scope": "ingest"})
    plaintext = re.search(r'value="(wb_[^"]+)"', response.content.decode()).group(1)
    assert "no-store" in response["Cache-Control"]
    client = Client(headers={"authorization": f"Bearer {plaintext}"})
    assert client.get("/api/v1/cases/WB-NONE-0000").status_code == 404
    assert plaintext not in admin_client.get(change_url(system)).content.decode()
    event = trail_event_as_dict(TrailEvent.objects.filter(action="system.key_created").last())
    assert event["actor"] == {"type": "user", "id": "admin"}


def test_a_staff_user_without_the_admin_role_is_refused_secrets_and_logged(system, staff, caplog):
    issued = api_key_create(system=system, actor=factories.ACTOR)
    old = system.callback_secret
    assert staff.get(change_url(system)).status_code == 200  # may read and edit the rest
    with caplog.at_level(logging.WARNING, logger="workbench.security"):
        rotate = staff.post(f"/admin/workbench/aisystem/{system.pk}/rotate-secret/")
        new_key = staff.post(f"/admin/workbench/aisystem/{system.pk}/new-key/", {"scope": "ingest"})
        revoke = staff.post(
            "/admin/workbench/apikey/",
            {"action": "revoke", "_selected_action": [issued.key.pk]},
        )
    assert (rotate.status_code, new_key.status_code, revoke.status_code) == (403, 403, 403)
    assert AISystem.objects.get(pk=system.pk).callback_secret == old
    assert APIKey.objects.get(pk=issued.key.pk).revoked_at is None
    assert APIKey.objects.filter(system=system).count() == 1
    refusals = [r for r in caplog.records if r.name == "workbench.security"]
    assert len(refusals) == 3
    assert all("ops.olga" in r.getMessage() and "not an admin" in r.getMessage() for r in refusals)
    assert not TrailEvent.objects.filter(
        action__in=["system.secret_rotated", "system.key_revoked"]
    ).exists()


def test_send_test_delivery_shows_the_receivers_answer(system, admin_client, receiver):
    system.callback_url = receiver.url
    system.save()
    url = f"/admin/workbench/aisystem/{system.pk}/test-delivery/"
    assert url in admin_client.get(change_url(system)).content.decode()
    assert "Send test delivery" in admin_client.get(url).content.decode()
    assert receiver.received == []  # a GET sends nothing

    response = admin_client.post(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Delivered: HTTP 200" in page and "thanks" in page
    [request] = receiver.received
    Webhook(system.callback_secret).verify(request.body, request.headers)

    receiver.status = 500
    response = admin_client.post(
        "/admin/workbench/aisystem/",
        {"action": "send_test_delivery", "_selected_action": [system.pk]},
    )
    page = response.content.decode()
    assert "Refused: HTTP 500" in page and "receiver says no" in page
    assert DeliveryAttempt.objects.filter(message__topic="webhook.test").count() == 2

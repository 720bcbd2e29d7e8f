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

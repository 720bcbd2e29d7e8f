"""Policies and reason codes run from the admin: every change through a
service, recorded in the trail naming the person who made it."""

import json

import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from reviews.models import Case, Policy, ReasonCode, ReviewTask
from tests import factories
from tests.factories import client_for
from tests.reviews.test_policies import SECTION_4, SECTION_4_QUEUES
from workbench.models import TrailEvent
from workbench.services import ai_system_create

UPLOAD = "/admin/reviews/policy/upload/"


def policy_file(**changes) -> SimpleUploadedFile:
    document = {**yaml.safe_load(SECTION_4.read_text()), "queues": SECTION_4_QUEUES, **changes}
    return SimpleUploadedFile("claims.yaml", yaml.safe_dump(document).encode())


def event(action: str) -> dict:
    return json.loads(TrailEvent.objects.filter(action=action).latest("seq").body)


def test_a_policy_is_uploaded_tried_and_published_by_a_person(db, admin_client, admin_user):
    ai_system_create(slug="claims-ai", name="Claims", kind="claim_decision", actor=factories.ACTOR)

    page = admin_client.post(UPLOAD, {"file": policy_file()})

    html = page.content.decode()
    assert page.status_code == 200
    assert "Dry run: claims-ai, 0 latest cases" in html and "has no cases yet" in html
    assert not Policy.objects.exists()  # a dry run publishes nothing
    document = page.context["document_json"]

    published = admin_client.post(UPLOAD, {"publish": "Publish", "document": document})

    assert published.status_code == 302
    policy = Policy.objects.get()
    assert policy.version == 1 and policy.published_by == admin_user.username
    assert event("policy.published")["actor"] == {"type": "user", "id": admin_user.username}
    assert event("queue.created")["actor"]["id"] == admin_user.username


def test_the_dry_run_shows_where_the_latest_cases_would_go(system, admin_client):
    for n in range(3):
        factories.ingest(system, factories.claim_payload(n))  # denials: claims-review
    rules = [{"name": "deny", "when": {"outcome_in": ["deny"]}, "queue": "senior-review"}]
    document = {**factories.CLAIMS_POLICY, "rules": rules}
    upload = SimpleUploadedFile("claims.json", json.dumps(document).encode())
    before = (Case.objects.count(), ReviewTask.objects.count(), TrailEvent.objects.count())

    page = admin_client.post(UPLOAD, {"file": upload})

    html = page.content.decode()
    assert "3 of 3 would go somewhere else than under version 1." in html
    rows = {row.destination: (row.current, row.proposed) for row in page.context["dry_run"].rows}
    assert rows == {"claims-review": (3, 0), "senior-review": (0, 3)}
    assert (Case.objects.count(), ReviewTask.objects.count(), TrailEvent.objects.count()) == before


def test_a_bad_policy_is_refused_with_every_problem_and_its_path(system, admin_client):
    page = admin_client.post(
        UPLOAD, {"text": "system: claims-ai\nrules:\n  - {name: r, queue: ghost}\ncolour: red\n"}
    )

    html = page.content.decode()
    assert "The policy was not published" in html
    assert "unknown top-level field &#x27;colour&#x27;" in html
    assert "rules[0] (r).queue: unknown queue &#x27;ghost&#x27;" in html
    assert "rules[0] (r).when: required" in html
    assert Policy.objects.count() == 1  # the fixture's, untouched

    assert "not valid YAML" in admin_client.post(UPLOAD, {"text": "rules: ["}).content.decode()
    empty = admin_client.post(UPLOAD, {})
    assert "choose a policy file or paste its text" in empty.content.decode()


def test_only_someone_who_may_add_policies_uploads_them(system, alice):
    staff = factories.UserFactory(username="staff.sue", is_staff=True)
    assert client_for(staff).get(UPLOAD).status_code == 403
    assert client_for(staff).post(UPLOAD, {"file": policy_file()}).status_code == 403
    assert client_for(alice).get(UPLOAD).status_code == 302  # to the admin's login
    assert Policy.objects.count() == 1


def test_a_reason_code_is_added_and_edited_in_the_admin_and_recorded(system, admin_client):
    added = admin_client.post(
        "/admin/reviews/reasoncode/add/",
        {
            "system": system.pk,
            "code": "CO-97",
            "description": "Bundled",
            "customer_text": "This service is paid as part of another one.",
            "active": "on",
        },
    )
    assert added.status_code == 302
    code = ReasonCode.objects.get(system=system, code="CO-97")
    assert event("system.reason_code_saved")["data"] == {
        "code": "CO-97",
        "created": True,
        "changed": ["active", "code", "customer_text", "description"],
        "active": True,
    }

    changed = admin_client.post(
        f"/admin/reviews/reasoncode/{code.pk}/change/",
        {"description": "Bundled", "customer_text": "Paid as part of another service."},
    )
    assert changed.status_code == 302
    saved = event("system.reason_code_saved")
    assert saved["actor"]["type"] == "user"
    assert saved["data"]["changed"] == ["active", "customer_text"]  # unticked: deactivated
    code.refresh_from_db()
    assert not code.active and code.customer_text == "Paid as part of another service."


def test_a_reason_code_with_markup_is_refused_in_the_admin(system, admin_client):
    page = admin_client.post(
        "/admin/reviews/reasoncode/add/",
        {"system": system.pk, "code": "X-1", "description": "d", "customer_text": "<b>hi</b>"},
    )
    assert page.status_code == 200
    assert "must be plain text" in page.content.decode()
    assert not ReasonCode.objects.filter(code="X-1").exists()
    assert not TrailEvent.objects.filter(action="system.reason_code_saved").exists()


def test_a_queues_members_are_changed_in_the_admin_and_an_inactive_one_is_refused(system):
    from reviews.models import Queue

    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    mia = factories.UserFactory(username="rev.mia", role="reviewer")
    gone = factories.UserFactory(username="rev.gone", role="reviewer", is_active=False)
    queue = Queue.objects.get(system=system, slug="claims-review")
    client = factories.client_for(admin_user)
    url = f"/admin/reviews/queue/{queue.pk}/change/"
    assert client.get(url).status_code == 200
    refused = client.post(url, {"members": [mia.pk, gone.pk]})
    assert refused.status_code == 200
    assert "an inactive user cannot be a member: rev.gone" in refused.content.decode()
    assert not queue.members.exists()
    assert client.post(url, {"members": [mia.pk]}).status_code == 302
    assert list(queue.members.all()) == [mia]
    event = TrailEvent.objects.filter(action="queue.members_changed").get()
    assert json.loads(event.body)["data"]["members"] == ["rev.mia"]
    queue.refresh_from_db()
    assert queue.name  # nothing else of the queue changed

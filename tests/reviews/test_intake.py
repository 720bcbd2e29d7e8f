"""Intake settles its unique races in the service (issue 13 item 6): a subject
or a case that another writer creates while this one is inserting it is
taken as found, never an error."""

import threading
import time

import pytest
from django.db import connection, transaction

from reviews.models import Case, Subject
from reviews.schemas import CaseIn
from reviews.services import case_ingest, case_ingest_batch
from reviews.services.subjects import contact_open
from tests import factories
from workbench.services import trail_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def held_open(work, *, seconds: float = 0.5):
    """Run ``work`` in a thread's transaction that stays open ``seconds``
    after it, so that this thread's writes meet its uncommitted rows; return
    (start, wait): start it, then wait for it to end."""
    done_work = threading.Event()
    errors: list[BaseException] = []

    def run():
        try:
            with transaction.atomic():
                work()
                done_work.set()
                time.sleep(seconds)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
            done_work.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)

    def start():
        thread.start()
        assert done_work.wait(30)

    def wait():
        thread.join(30)
        assert errors == []

    return start, wait


def test_a_subject_another_batch_creates_meanwhile_is_used_not_refused():
    system = factories.system_with_policy()
    theirs = factories.claim_payload(1, subject={"reference": "MBR-NEW", "name": "Theirs"})
    mine = factories.claim_payload(2, subject={"reference": "MBR-NEW", "name": "Mine"})
    start, wait = held_open(lambda: case_ingest(system=system, item=CaseIn.model_validate(theirs)))
    start()  # their subject row exists, uncommitted: this insert waits for it

    (result,) = case_ingest_batch(system=system, items=[CaseIn.model_validate(mine)])
    wait()

    assert result.status == 201
    subject = Subject.objects.get(reference="MBR-NEW")
    assert Case.objects.filter(subject=subject).count() == 2
    assert contact_open(subject)["name"] == "Mine"  # the latest details given win
    assert trail_verify().ok


def test_a_case_another_batch_stores_meanwhile_is_answered_200_or_409():
    system = factories.system_with_policy()
    same, other = factories.claim_payload(1), factories.claim_payload(2)
    # Their subjects exist already: only the cases meet.
    for n, payload in ((101, same), (102, other)):
        factories.ingest(system, factories.claim_payload(n, subject=payload["subject"]))
    start, wait = held_open(
        lambda: case_ingest_batch(
            system=system, items=[CaseIn.model_validate(same), CaseIn.model_validate(other)]
        )
    )
    start()  # their two cases are inserted, uncommitted

    changed = {**other, "confidence": 0.55}
    results = case_ingest_batch(
        system=system,
        items=[
            CaseIn.model_validate(same),  # the same body: 200
            CaseIn.model_validate(changed),  # another body: 409
            CaseIn.model_validate(factories.claim_payload(3)),  # new: 201
        ],
    )
    wait()

    assert [result.status for result in results] == [200, 409, 201]
    assert results[0].case.reference == Case.objects.get(external_id=same["external_id"]).reference
    assert results[1].error.code == "conflict"
    assert Case.objects.count() == 5
    assert trail_verify().ok

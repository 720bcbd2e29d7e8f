"""Concurrent intake never answers 5xx (issue 13 item 6): four client
processes post, at the same moment, batches (and single cases) that share new
subject references and external ids, to a real gunicorn on PostgreSQL. Every
item answers 201, 200 or 409 as the contract says, and every case is stored
once, with its events."""

import json
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from reviews.models import Case, Subject
from reviews.schemas import CaseIn
from reviews.services.intake import _body_digest
from tests import factories
from tests.reviews.test_concurrency import ROOT
from workbench.models import TrailEvent
from workbench.services import api_key_create, trail_verify

pytestmark = [pytest.mark.postgres, pytest.mark.services]

CLIENTS = 4
CASES = 240  # external ids, every one posted by every client
SUBJECTS = 40  # new subject references, each shared by six cases
BATCH = 40


def body(n: int, client: int) -> dict:
    """Case ``n`` as ``client`` sends it. Clients 2 and 3 send every fifth
    case with another confidence: for those one body wins, the other gets 409.
    Each client gives its own name for the subject: the latest is kept."""
    confidence = 0.55 if (n % 5 == 0 and client >= 2) else 0.62
    return factories.claim_payload(
        n,
        external_id=f"CLM-RACE-{n:04d}",
        subject={
            "reference": f"MBR-RACE-{n % SUBJECTS:03d}",
            "name": f"Client {client} name",
            "email": f"client{client}@example.org",
        },
        confidence=confidence,
    )


def plan(client: int) -> list[dict]:
    """Six batches over all the cases, each client's shifted by ten cases so
    that the batches overlap in a different pattern each time; then four of
    the cases again one at a time."""
    order = [(n + client * 10) % CASES for n in range(CASES)]
    requests_ = [
        {"path": "/api/v1/cases/batch", "body": {"cases": [body(n, client) for n in chunk]}}
        for chunk in (order[i : i + BATCH] for i in range(0, CASES, BATCH))
    ]
    requests_ += [{"path": "/api/v1/cases", "body": body(n, client)} for n in (3, 5, 77, 160)]
    return requests_


def test_four_clients_posting_shared_subjects_and_external_ids_never_get_a_5xx(
    broker, processes, tmp_path
):
    system = factories.system_with_policy()
    key = api_key_create(system=system, scope="ingest", actor=factories.ACTOR).plaintext
    web = processes.web(broker.url, workers=2, threads=4)
    start_at = time.time() + 3  # every client starts at this instant
    clients = []
    for client in range(CLIENTS):
        bodies = tmp_path / f"client-{client}.json"
        bodies.write_text(json.dumps(plan(client)))
        clients.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.faults.ingest_client",
                    web.url,
                    key,
                    str(bodies),
                    str(start_at),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    answers = []
    for client, process in enumerate(clients):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        answers += [(client, answer) for answer in json.loads(out)]

    # No request and no item answered 5xx; every item 201, 200 or 409.
    assert {answer["http"] for _, answer in answers} <= {200, 201, 409}, web.output()[-3000:]
    items = [(client, item) for client, answer in answers for item in answer["items"]]
    assert len(items) == CLIENTS * (CASES + 4)
    assert {item["status"] for _, item in items} <= {200, 201, 409}
    assert "Traceback" not in web.output()

    # Each case was created once: one 201 per external id. Those sending
    # the body stored got 200 with the same reference; the others 409.
    stored = {case.external_id: case for case in Case.objects.all()}
    assert len(stored) == CASES
    by_id = defaultdict(list)
    for client, item in items:
        by_id[item["external_id"]].append((client, item))
    for external_id, answered in by_id.items():
        case = stored[external_id]
        n = int(external_id.rsplit("-", 1)[1])
        assert [item["status"] for _, item in answered].count(201) == 1, answered
        for client, item in answered:
            same = _body_digest(CaseIn.model_validate(body(n, client))) == case.body_digest
            if item["status"] == 409:
                assert not same, (external_id, client)
            else:
                assert same and item["reference"] == case.reference, (external_id, client)
    assert {status for _, item in items for status in [item["status"]]} >= {200, 201, 409}

    # One subject per reference, with the cases it was given; two intake
    # events per case; the chain holds.
    assert Subject.objects.count() == SUBJECTS
    for case in stored.values():
        n = int(case.external_id.rsplit("-", 1)[1])
        assert case.subject.reference == f"MBR-RACE-{n % SUBJECTS:03d}"
    for action in ("case.received", "case.routed"):
        cases = TrailEvent.objects.filter(action=action).values_list("case", flat=True)
        assert sorted(cases) == sorted(case.reference for case in stored.values()), action
    assert trail_verify().ok

"""One ingesting process for the concurrency test: ``python -m tests.reviews.ingest_worker
SYSTEM FIRST COUNT``. Submits cases FIRST..FIRST+COUNT-1, alternating batches
and single submissions, and prints how many came back 201 and 200."""

import json
import sys

import django


def main(slug: str, first: int, count: int) -> None:
    django.setup()
    from reviews.schemas import CaseIn
    from reviews.services import case_ingest, case_ingest_batch
    from tests import factories
    from workbench.models import AISystem

    system = AISystem.objects.get(slug=slug)
    statuses: dict[int, int] = {}
    numbers = list(range(first, first + count))
    for start in range(0, len(numbers), 10):
        chunk = [
            CaseIn.model_validate(factories.claim_payload(n)) for n in numbers[start : start + 10]
        ]
        if start // 10 % 2:
            results = [case_ingest(system=system, item=item) for item in chunk]
        else:
            results = case_ingest_batch(system=system, items=chunk)
        for result in results:
            statuses[result.status] = statuses.get(result.status, 0) + 1
    print(json.dumps(statuses))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

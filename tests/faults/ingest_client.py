"""One API client process for the intake race test:
``python -m tests.faults.ingest_client URL KEY BODIES START_AT``.

Waits until the wall-clock time ``START_AT`` (so that every client starts at
once), then POSTs each request of the JSON file ``BODIES`` (a list of
``{"path": "/api/v1/cases/batch" | "/api/v1/cases", "body": {...}}``) in
order, and prints one JSON line: per request its HTTP status and, per case
item, the external id with its status and reference."""

import json
import sys
import time

import requests


def main(url: str, key: str, bodies_file: str, start_at: float) -> None:
    with open(bodies_file) as f:
        requests_to_send = json.load(f)
    answers = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {key}"
        time.sleep(max(0.0, start_at - time.time()))
        for request in requests_to_send:
            response = http.post(url + request["path"], json=request["body"], timeout=120)
            answer = {"path": request["path"], "http": response.status_code, "items": []}
            try:
                data = response.json()
            except ValueError:
                data = {"unreadable": response.text[:500]}
            if request["path"].endswith("/batch"):
                # A batch that failed as a whole fails each of its items.
                cases = request["body"]["cases"]
                results = data.get("results") or [{"status": response.status_code}] * len(cases)
                for case, item in zip(cases, results, strict=True):
                    answer["items"].append(
                        {
                            "external_id": case["external_id"],
                            "status": item["status"],
                            "reference": item.get("reference"),
                        }
                    )
            else:
                answer["items"].append(
                    {
                        "external_id": request["body"]["external_id"],
                        "status": response.status_code,
                        "reference": data.get("reference"),
                    }
                )
            answers.append(answer)
    print(json.dumps(answers))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))

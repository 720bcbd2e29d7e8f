"""Claim decisions for the intake benches (``bench.ingest``,
``bench.profile_ingest``): built around real CARC reason codes, with outcome,
confidence and amount varied so routing splits."""

import random

from bench.harness import ROOT

CARC_CSV = ROOT / "data" / "claims" / "carc_claim_adjustment_reason_codes.csv"

# Common professional/outpatient procedure codes (CPT/HCPCS) with plain descriptions.
PROCEDURES = [
    ("99213", "Office visit, established patient, low complexity", 95, 180),
    ("99214", "Office visit, established patient, moderate complexity", 130, 260),
    ("99285", "Emergency department visit, high severity", 450, 1900),
    ("71046", "Chest X-ray, 2 views", 40, 160),
    ("80053", "Comprehensive metabolic panel", 15, 90),
    ("85025", "Complete blood count with differential", 10, 60),
    ("93000", "Electrocardiogram with interpretation", 20, 120),
    ("97110", "Therapeutic exercise, each 15 minutes", 30, 95),
    ("73721", "MRI lower extremity joint without contrast", 400, 2600),
    ("70450", "CT head without contrast", 250, 1800),
    ("45378", "Diagnostic colonoscopy", 700, 3800),
    ("29881", "Knee arthroscopy with meniscectomy", 2200, 9500),
    ("27447", "Total knee arthroplasty", 12000, 38000),
    ("J1100", "Dexamethasone sodium phosphate injection, 1 mg", 5, 40),
    ("G0439", "Annual wellness visit, subsequent", 120, 210),
]
GIVEN = [
    "Ana",
    "Ben",
    "Chloe",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Mateo",
    "Nadia",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
FAMILY = [
    "Ruiz",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Haddad",
    "Kowalski",
    "Tanaka",
    "Silva",
    "Dubois",
    "Murphy",
    "Andersen",
    "Rossi",
    "Cohen",
    "Patel",
    "Johansson",
    "Moreau",
]


def carc_codes() -> list[tuple[str, str]]:
    import csv

    with open(CARC_CSV, newline="") as f:
        return [(row["code"], row["description"]) for row in csv.DictReader(f)]


class Payloads:
    """Claim decisions built like tests/factories.py claim_payload, around real
    CARC codes, with outcome, confidence and amount varied so routing splits:
    about a third is finalized by the AI, the rest goes to the two queues."""

    def __init__(self, members: int, seed: int = 20261122):
        self.rng = random.Random(seed)
        self.carc = carc_codes()
        self.members = members

    def case(self, external_id: str) -> dict:
        rng = self.rng
        roll = rng.random()
        outcome = "approve" if roll < 0.65 else "deny" if roll < 0.88 else "partial"
        if outcome == "approve":
            confidence = round(rng.uniform(0.70, 0.995), 3)
        else:
            confidence = round(rng.uniform(0.45, 0.99), 3)
        lines = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            code, description, low, high = rng.choice(PROCEDURES)
            lines.append(
                {
                    "code": code,
                    "description": description,
                    "amount": round(rng.uniform(low, high), 2),
                    "reason_codes": [],
                }
            )
        amount = round(sum(line["amount"] for line in lines), 2)
        reasons = []
        if outcome != "approve":
            for _ in range(rng.choice((1, 1, 2))):
                code, text = rng.choice(self.carc)
                group = rng.choice(("CO", "CO", "PR", "OA"))
                reasons.append({"code": f"{group}-{code}", "text": text[:1000]})
            for line in lines:
                line["reason_codes"] = [r["code"] for r in reasons]
        summary = reasons[0]["text"][:2000] if reasons else "Approved as billed"
        member = rng.randrange(self.members)
        # A member keeps their name from one claim to the next. (Drawn anew for
        # each claim, every repeat rewrote the subject's contact details, and
        # two clients' batches queued on each other's subject rows.)
        given, family = GIVEN[member % len(GIVEN)], FAMILY[member // len(GIVEN) % len(FAMILY)]
        return {
            "external_id": external_id,
            "kind": "claim_decision",
            "subject": {
                "reference": f"MBR-{member:06d}",
                "name": f"{given} {family}",
                "email": f"{given.lower()}.{family.lower()}{member}@example.org",
                "locale": "en",
            },
            "model": {"name": "claims-triage", "version": "2026.11.1"},
            "input": {
                "claim": {
                    "id": f"C{external_id}",
                    "type": rng.choice(("professional", "professional", "institutional")),
                    "place_of_service": rng.choice(("11", "21", "22", "23")),
                    "diagnosis": rng.choice(
                        ("M17.11", "J18.9", "E11.9", "I10", "R07.9", "S83.241A")
                    ),
                },
                "lines": lines,
            },
            "output": {"outcome": outcome, "summary": summary, "reasons": reasons},
            "confidence": confidence,
            "explanation": "top features: procedure code, diagnosis pointer, prior authorization",
            "metadata": {"amount": amount, "lines": len(lines)},
        }

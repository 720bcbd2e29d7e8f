"""The demo: two AI systems with their policies, queues and reason-code
catalogs, one user per role, and a few hundred realistic cases (DESIGN §8).

Everything goes through the services, so the cases are routed by the
published policies and written to the trail as real submissions would be.
Claims are built around real X12 claim adjustment reason codes (CARC) and
chats are real customer requests and answers from the Bitext customer
support sample (``data/``; licences in ``data/licenses``). The case data is
drawn from ``random.Random(2026)``: the same ``cases`` gives the same cases.
"""

import csv
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction

from reviews.management.commands.load_policy import policy_read
from reviews.management.commands.load_reason_codes import reason_codes_read
from reviews.models import Queue
from reviews.schemas import CaseIn
from reviews.services import case_ingest_batch, policy_publish, reason_codes_load
from reviews.services.queue_members import queue_members_set
from workbench.models import AISystem, Role, User
from workbench.services import Actor, ai_system_create, api_key_create, user_create

HERE = Path(__file__).resolve().parent
DATA = Path(settings.BASE_DIR) / "data"
ACTOR = Actor.workbench("load_demo")
SEED = 2026
BATCH_SIZE = 500

# One password for every demo user; the README and the command print it.
DEMO_PASSWORD = "workbench-demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    manager: str | None = None


# Managers come before the people who report to them.
DEMO_USERS = [
    DemoUser("sup.sam", Role.SUPERVISOR),
    DemoUser("rev.alice", Role.REVIEWER, manager="sup.sam"),
    DemoUser("rev.bob", Role.REVIEWER, manager="sup.sam"),
    DemoUser("rev.chen", Role.REVIEWER, manager="sup.sam"),
    DemoUser("rev.dora", Role.REVIEWER, manager="sup.sam"),
    DemoUser("appeal.carol", Role.APPEAL_REVIEWER),
    DemoUser("comp.dana", Role.COMPLIANCE),
    DemoUser("admin", Role.ADMIN),
]


# Each system's reviewer queues have their own team (queue members, DESIGN §3):
# the claims reviewers do not see the chats, nor the chat reviewers the claims.
DEMO_TEAMS = {
    "claims-ai": {
        "queues": ["claims-review", "senior-review"],
        "members": ["rev.alice", "rev.bob"],
    },
    "support-bot": {"queues": ["chat-escalations"], "members": ["rev.chen", "rev.dora"]},
}


@dataclass(frozen=True)
class DemoSystem:
    slug: str
    name: str
    kind: str
    purpose: str
    policy_file: Path
    # The catalog reviewers pick a reason from, when the policy carries none.
    reason_codes_file: Path | None = None


CLAIMS = DemoSystem(
    slug="claims-ai",
    name="Claims triage model",
    kind=AISystem.Kind.CLAIM_DECISION,
    purpose="Recommends approving, denying or partly paying health insurance claims "
    "from the claim lines, diagnosis and plan rules.",
    policy_file=HERE / "claims-ai.yaml",
    reason_codes_file=DATA / "claims" / "carc_customer_wording.csv",
)
SUPPORT = DemoSystem(
    slug="support-bot",
    name="Support assistant",
    kind=AISystem.Kind.CHATBOT_ANSWER,
    purpose="Answers customers' questions about orders, deliveries, refunds and "
    "accounts in the web shop's chat, and hands over to a person when asked.",
    policy_file=HERE / "support-bot.yaml",  # with its reason codes
)
DEMO_SYSTEMS = [CLAIMS, SUPPORT]


@dataclass
class DemoSummary:
    loaded: bool  # False: the demo was there already and nothing changed
    existing: list[str] = field(default_factory=list)  # demo systems found on arrival
    keys: dict[str, str] = field(default_factory=dict)  # system slug -> ingest key, shown once
    users: list[DemoUser] = field(default_factory=list)
    skipped_users: list[str] = field(default_factory=list)  # usernames taken already
    policies: dict[str, int] = field(default_factory=dict)  # system slug -> version
    reason_codes: dict[str, int] = field(default_factory=dict)  # system slug -> codes loaded
    cases: Counter = field(default_factory=Counter)  # (system slug, status) -> count
    teams: dict[str, tuple[list[str], list[str]]] = field(
        default_factory=dict
    )  # slug -> (queues, members)


def demo_load(*, cases: int = 300) -> DemoSummary:
    """Load the demo, half claims and half chats. Does nothing when a demo
    AI system exists already, so running it again is safe."""
    existing = list(
        AISystem.objects.filter(slug__in=[s.slug for s in DEMO_SYSTEMS]).values_list(
            "slug", flat=True
        )
    )
    if existing:
        return DemoSummary(loaded=False, existing=sorted(existing))

    summary = DemoSummary(loaded=True, users=DEMO_USERS)
    password_hash = make_password(DEMO_PASSWORD)
    # All or nothing: a failed load leaves no half demo behind to block the next.
    with transaction.atomic():
        for user in DEMO_USERS:
            if User.objects.filter(username=user.username).exists():
                # e.g. an admin made with createsuperuser: left as it is.
                summary.skipped_users.append(user.username)
                continue
            created = user_create(
                username=user.username, role=user.role, manager=user.manager, actor=ACTOR
            )
            # One hash for the shared, published password: hashing it six times
            # over (PBKDF2, a second or two each) would be most of the load time.
            created.password = password_hash
            created.save(update_fields=["password"])

        claim_count = cases - cases // 2
        builders = {CLAIMS.slug: claim_cases(claim_count), SUPPORT.slug: chat_cases(cases // 2)}
        for spec in DEMO_SYSTEMS:
            system = ai_system_create(
                slug=spec.slug,
                name=spec.name,
                kind=spec.kind,
                intended_purpose=spec.purpose,
                actor=ACTOR,
            )
            published = policy_publish(document=policy_read(spec.policy_file), actor=ACTOR)
            summary.policies[spec.slug] = published.policy.version
            if spec.reason_codes_file is not None:
                reason_codes_load(
                    system=system, rows=reason_codes_read(spec.reason_codes_file), actor=ACTOR
                )
            summary.reason_codes[spec.slug] = system.reason_codes.filter(active=True).count()
            summary.keys[spec.slug] = api_key_create(system=system, actor=ACTOR).plaintext
            team = DEMO_TEAMS[spec.slug]
            members = list(User.objects.filter(username__in=team["members"], is_active=True))
            for queue in Queue.objects.filter(system=system, slug__in=team["queues"]):
                queue_members_set(queue=queue, users=members, actor=ACTOR)
            summary.teams[spec.slug] = (team["queues"], sorted(u.username for u in members))
            items = builders[spec.slug]
            for start in range(0, len(items), BATCH_SIZE):
                results = case_ingest_batch(system=system, items=items[start : start + BATCH_SIZE])
                for result in results:
                    if result.status != 201:
                        # The demo data is ours: a refusal is a bug in this module.
                        raise RuntimeError(f"demo case refused: {result.error}")
                    summary.cases[spec.slug, result.case.status] += 1
    return summary


# --- Data files -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def carc_descriptions() -> dict[str, str]:
    """CARC code -> description, without the notes addressed to billing staff."""
    with open(DATA / "claims" / "carc_claim_adjustment_reason_codes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        row["code"]: re.split(r" (?:Note:|This change effective)", row["description"])[0]
        for row in rows
    }


@lru_cache(maxsize=1)
def support_requests() -> list[dict]:
    with open(DATA / "conversations" / "bitext_customer_support_sample.jsonl") as f:
        return [json.loads(line) for line in f]


# --- Claims ---------------------------------------------------------------------------

# (code, plain description, lowest and highest billed amount). Procedure codes
# are CPT/HCPCS-like; the descriptions are our own.
SERVICES = [
    ("99203", "Office visit, new patient", 110, 220),
    ("99213", "Office visit, established patient", 90, 180),
    ("99214", "Office visit, established patient, moderate complexity", 130, 260),
    ("99284", "Emergency department visit, high severity", 450, 1500),
    ("80053", "Comprehensive metabolic panel", 15, 60),
    ("85025", "Complete blood count", 10, 40),
    ("93000", "Electrocardiogram with interpretation", 20, 60),
    ("71046", "Chest X-ray, two views", 40, 150),
    ("72148", "MRI of the lower spine without contrast", 400, 1800),
    ("70553", "MRI of the brain with and without contrast", 900, 3500),
    ("97110", "Physical therapy, therapeutic exercise", 60, 240),
    ("90837", "Psychotherapy, 60 minutes", 120, 250),
    ("96413", "Chemotherapy infusion, first hour", 250, 700),
    ("J0897", "Denosumab injection", 1200, 2500),
    ("E0601", "CPAP breathing device", 600, 1500),
    ("43239", "Upper GI endoscopy with biopsy", 800, 3000),
    ("45380", "Colonoscopy with biopsy", 900, 3500),
    ("66984", "Cataract removal with lens implant", 1500, 4500),
    ("29881", "Knee arthroscopy with meniscus repair", 3000, 9000),
    ("59400", "Routine obstetric care with vaginal delivery", 3000, 9000),
    ("27447", "Total knee replacement", 15000, 40000),
]
# Costly services are rarer; ancillary ones come along with a main service.
SERVICE_WEIGHTS = [8, 10, 8, 4, 6, 6, 4, 4, 4, 2, 4, 4, 2, 1, 2, 2, 2, 2, 2, 1, 1]
ANCILLARY = ["80053", "85025", "93000", "71046"]

# Real CARC codes with the adjustment group a payer would use with them.
DENIAL_REASONS = [
    ("CO", "50"),  # not deemed a medical necessity
    ("CO", "50"),
    ("CO", "197"),  # precertification absent
    ("CO", "197"),
    ("PR", "204"),  # not covered under the current benefit plan
    ("CO", "11"),  # diagnosis inconsistent with the procedure
    ("CO", "55"),  # experimental/investigational
    ("CO", "56"),  # not proven effective
    ("CO", "29"),  # filing time limit expired
    ("PR", "27"),  # after coverage terminated
    ("OA", "18"),  # duplicate claim
    ("OA", "22"),  # coordination of benefits
    ("CO", "167"),  # diagnosis not covered
    ("CO", "185"),  # rendering provider not eligible
    ("CO", "181"),  # procedure code invalid on the date of service
]
PARTIAL_REASONS = [
    ("CO", "97"),  # included in the payment for another service
    ("CO", "97"),
    ("CO", "151"),  # information does not support this many services
    ("PR", "119"),  # benefit maximum reached
    ("CO", "198"),  # precertification exceeded
    ("CO", "236"),  # incompatible procedure combination (NCCI)
    ("CO", "4"),  # modifier inconsistent or missing
]
PATIENT_SHARE = [("PR", "1"), ("PR", "2"), ("PR", "3")]  # deductible, coinsurance, co-pay
REGIONS = ["northeast", "midwest", "south", "west"]
PLANS = ["PPO", "HMO", "EPO", "HDHP"]
FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
    "Kira", "Liam", "Maya", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tara",
]  # fmt: skip
LAST_NAMES = [
    "Ruiz", "Okafor", "Nguyen", "Schmidt", "Haddad", "Kowalski", "Tanaka", "Murphy",
    "Silva", "Patel", "Johansson", "Mensah", "Rossi", "Cohen", "Dubois", "Park",
]  # fmt: skip


def claim_cases(count: int, *, seed: int = SEED) -> list[CaseIn]:
    """``count`` claim decisions: about half approvals, a third denials, the
    rest partial payments, with their member, amount and region."""
    rng = random.Random(seed)
    members = _members(rng, max(1, count * 4 // 5), prefix="MBR", with_contact=0.4)
    return [_claim(rng, n, rng.choice(members)) for n in range(1, count + 1)]


def _members(rng: random.Random, count: int, *, prefix: str, with_contact: float) -> list[dict]:
    numbers = rng.sample(range(10000, 100000), count)
    members = []
    for number in numbers:
        # One customer in five reads Spanish (their notices, emails and the
        # questions after a decision): chosen by number, not by ``rng``, so
        # that the rest of the demo data stays as it was.
        locale = "es" if number % 5 == 0 else "en"
        member = {"reference": f"{prefix}-{number}", "locale": locale}
        if rng.random() < with_contact:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            member["name"] = f"{first} {last}"
            member["email"] = f"{first}.{last}.{number}@example.org".lower()
        members.append(member)
    return members


def _claim(rng: random.Random, n: int, member: dict) -> CaseIn:
    main = rng.choices(SERVICES, weights=SERVICE_WEIGHTS)[0]
    services = [main]
    for code in rng.sample(ANCILLARY, rng.choice([0, 0, 1, 2])):
        services.append(next(s for s in SERVICES if s[0] == code))
    lines = [
        {
            "code": code,
            "description": description,
            "amount": round(rng.uniform(low, high), 2),
            "reason_codes": [],
        }
        for code, description, low, high in services
    ]
    amount = round(sum(line["amount"] for line in lines), 2)

    outcome = rng.choices(["approve", "deny", "partial"], weights=[50, 32, 18])[0]
    if outcome == "partial" and len(lines) == 1:
        # One service paid in part: a second visit on the same day, bundled.
        lines.append(
            {"code": "99213", "description": "Office visit, established patient, same day",
             "amount": round(rng.uniform(90, 180), 2), "reason_codes": []}
        )  # fmt: skip
        amount = round(sum(line["amount"] for line in lines), 2)
    descriptions = carc_descriptions()
    reasons = []
    if outcome == "approve":
        summary = "Covered under the member's plan and paid at the contracted rate."
        for line in lines:
            if rng.random() < 0.5:
                group, code = rng.choice(PATIENT_SHARE)
                line["reason_codes"].append(f"{group}-{code}")
        confidence = rng.uniform(0.82, 0.99) if rng.random() < 0.75 else rng.uniform(0.5, 0.82)
    else:
        group, code = rng.choice(DENIAL_REASONS if outcome == "deny" else PARTIAL_REASONS)
        adjusted = lines if outcome == "deny" else lines[-1:]
        for line in adjusted:
            line["reason_codes"].append(f"{group}-{code}")
        reasons = [{"code": f"{group}-{code}", "text": descriptions[code]}]
        summary = ("Denied: " if outcome == "deny" else "Paid in part: ") + descriptions[code]
        confidence = rng.uniform(0.5, 0.97)

    features = ["procedure code " + lines[0]["code"], "diagnosis pointer", "plan benefits"]
    if reasons:
        features.insert(0, f"reason {reasons[0]['code']}")
    return CaseIn.model_validate(
        {
            "external_id": f"CLM-2026-{n:06d}",
            "kind": "claim_decision",
            "subject": member,
            "model": {"name": "claims-triage", "version": "2026.11.1"},
            "input": {
                "claim": {
                    "id": f"C2026{n:07d}",
                    "type": "institutional" if main[3] > 5000 else "professional",
                    "plan": rng.choice(PLANS),
                    "place_of_service": "hospital" if main[3] > 3000 else "office",
                },
                "lines": lines,
            },
            "output": {"outcome": outcome, "summary": summary, "reasons": reasons},
            "confidence": round(confidence, 2),
            "explanation": "top features: " + ", ".join(features),
            "metadata": {"amount": amount, "region": rng.choice(REGIONS)},
        }
    )


# --- Chats ----------------------------------------------------------------------------

REFUSAL = (
    "I'm sorry, I can't do that in this chat. For your security, changes like this are "
    "made by our support team, who can check your identity first."
)
REFUSAL_REASON = {
    "code": "identity-check",
    "text": "The request changes the customer's account or payment details, which the "
    "assistant may not do without an identity check.",
}
# Requests the assistant sometimes declines: they change an account or a payment.
SENSITIVE_INTENTS = {
    "delete_account", "edit_account", "switch_account", "change_shipping_address",
    "payment_issue", "get_refund",
}  # fmt: skip
HEATED_INTENTS = {"contact_human_agent"}  # and "W" in tags: offensive language


def chat_cases(count: int, *, seed: int = SEED) -> list[CaseIn]:
    """``count`` chatbot answers to real customer requests: mostly answered,
    a few refused, handed over when the customer asks for a person."""
    rng = random.Random(seed + 1)
    # Upset customers and requests for a person are rare in the sample; take
    # more of them than their share so the escalation queue has some to show.
    heated, calm = [], []
    for row in support_requests():
        is_heated = "W" in row["tags"] or row["intent"] in HEATED_INTENTS
        (heated if is_heated else calm).append(row)
    picked = rng.sample(heated, min(count // 5, len(heated)))
    picked += rng.sample(calm, min(count - len(picked), len(calm)))
    picked += rng.choices(calm, k=count - len(picked))
    rng.shuffle(picked)
    customers = _members(rng, max(1, count * 9 // 10), prefix="CUS", with_contact=0)
    return [_chat(rng, n, row, rng.choice(customers)) for n, row in enumerate(picked, start=1)]


def _chat(rng: random.Random, n: int, row: dict, customer: dict) -> CaseIn:
    topic = row["intent"].replace("_", " ")
    output = {"outcome": "answered", "summary": f"Answered: {topic}.", "answer": row["response"]}
    if row["intent"] == "contact_human_agent":
        output.update(outcome="handoff", summary="Handed over to a support agent.")
    elif row["intent"] in SENSITIVE_INTENTS and rng.random() < 0.25:
        output.update(
            outcome="refused",
            summary="Declined: needs an identity check by the support team.",
            answer=REFUSAL,
            reasons=[REFUSAL_REASON],
        )
    confidence = rng.uniform(0.45, 0.99) if rng.random() < 0.3 else rng.uniform(0.7, 0.99)
    return CaseIn.model_validate(
        {
            "external_id": f"CHAT-2026-{n:06d}",
            "kind": "chatbot_answer",
            "subject": customer,
            "model": {"name": "support-llm", "version": "7"},
            "input": {"conversation": [{"role": "customer", "text": row["instruction"]}]},
            "output": output,
            "confidence": round(confidence, 2),
            "explanation": f"intent {row['intent']} (category {row['category']})",
            "metadata": {"intent": row["intent"], "category": row["category"]},
        }
    )

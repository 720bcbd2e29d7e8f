"""Many cases and review tasks, fast, for the claim and page benchmarks.

Not intake (far too slow for a million cases) and not the trail: rows are
made by PostgreSQL itself with ``INSERT ... SELECT FROM generate_series``,
from a few hundred *variants*, real demo cases (``reviews.demo.claim_cases`` /
``chat_cases``) routed by the real policy code. Each generated case takes a
variant's input, output, route and so on, with its own reference,
external_id, subject, notice token hash, times and status.

Usage (Django set up, inside one connection; the helper tables ``bench_variant``
and ``bench_stage`` are dropped by ``cleanup``):

1. ``variants_load(cursor, variants_build(...))``
2. the bench fills ``bench_stage`` (``STAGE_COLUMNS``) with its own SQL;
3. ``subjects_insert`` for each system, ``cases_and_tasks_insert(cursor)``.
"""

import json
from dataclasses import dataclass

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # intake's REFERENCE_ALPHABET
# Odd, so g -> g * MULTIPLIER mod 2^40 is a bijection: unique, random-looking references.
MULTIPLIER = 2654435761
MASK40 = (1 << 40) - 1


def reference_of(g: int) -> str:
    """The case reference ``WB-XXXX-XXXX`` given to generated case number ``g``."""
    r = (g * MULTIPLIER) & MASK40
    chars = "".join(ALPHABET[(r >> (5 * k)) & 31] for k in range(7, -1, -1))
    return f"WB-{chars[:4]}-{chars[4:]}"


def reference_sql(g: str) -> str:
    """SQL for ``reference_of`` of the bigint expression ``g``."""
    r = f"(({g})::bigint * {MULTIPLIER} & {MASK40})"
    chars = [f"substr('{ALPHABET}', (({r} >> {5 * k}) & 31)::int + 1, 1)" for k in range(7, -1, -1)]
    return "'WB-' || " + " || ".join(chars[:4]) + " || '-' || " + " || ".join(chars[4:])


def uniform_sql(g: str, salt: int = 0) -> str:
    """A deterministic pseudo-random number in [0, 1) from the bigint expression ``g``."""
    return f"((hashint8(({g})::bigint + {salt}) & 2147483647)::float8 / 2147483648.0)"


@dataclass
class Variant:
    system_id: int
    policy_id: int
    ext_prefix: str  # external_id = prefix + zero-padded case number
    item: object  # the CaseIn it was made from
    route: object  # its reviews.routing.Route
    queue_id: int | None  # where its review task goes; None: the AI decided alone
    sla_hours: int


def variants_build(system, policy, items, queues: dict) -> list[Variant]:
    """Route each demo item with the published policy, as intake would."""
    from reviews.services.intake import _route  # intake's own routing step

    out = []
    for item in items:
        route = _route(item, policy, stopped=False)
        queue = queues[route.queue] if route.needs_human else None
        out.append(
            Variant(
                system_id=system.pk,
                policy_id=policy.pk,
                ext_prefix="CLM-B-" if item.kind == "claim_decision" else "CHAT-B-",
                item=item,
                route=route,
                queue_id=queue.pk if queue else None,
                sla_hours=queue.sla_hours if queue else 0,
            )
        )
    return out


VARIANT_TABLE = """
CREATE UNLOGGED TABLE bench_variant (
    v int PRIMARY KEY,
    system_id bigint NOT NULL,
    policy_id bigint NOT NULL,
    ext_prefix text NOT NULL,
    kind text NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    input jsonb NOT NULL,
    output jsonb NOT NULL,
    outcome text NOT NULL,
    confidence float8 NOT NULL,
    explanation text NOT NULL,
    explanation_customer jsonb NOT NULL,
    metadata jsonb NOT NULL,
    route jsonb NOT NULL,
    queue_id bigint,
    task_kind text,
    priority int NOT NULL,
    sla_hours int NOT NULL,
    subject_base bigint NOT NULL DEFAULT 0,
    subject_count bigint NOT NULL DEFAULT 1
)
"""

# What each bench puts in bench_stage: one row per case to create.
#   g            case number (unique, also makes reference and external_id)
#   case_id      uuid of the case
#   v            its variant
#   created_at   case creation time
#   state        'none' (the AI decided alone: no task), 'open', 'claimed', 'done'
#                (a person decided: finalized), 'appeal' (open appeal task),
#                'escalation' (open escalation task)
#   queue_id, task_kind, priority, due_at, assignee_id, claimed_at, lease_expires_at
#                of its task (NULL for 'none')
STAGE_COLUMNS = """
    g bigint, case_id uuid, v int, created_at timestamptz, state text,
    queue_id bigint, task_kind text, priority int, due_at timestamptz,
    assignee_id bigint, claimed_at timestamptz, lease_expires_at timestamptz
"""


def variants_load(cursor, variants: list[Variant]) -> None:
    cursor.execute("DROP TABLE IF EXISTS bench_variant")
    cursor.execute(VARIANT_TABLE)
    rows = []
    for v, variant in enumerate(variants):
        item, route = variant.item, variant.route
        rows.append(
            (
                v,
                variant.system_id,
                variant.policy_id,
                variant.ext_prefix,
                item.kind,
                item.model.name,
                item.model.version,
                json.dumps(item.input),
                json.dumps(item.output.model_dump(mode="json")),
                item.output.outcome,
                item.confidence,
                item.explanation,
                json.dumps(item.explanation_customer),
                json.dumps(item.metadata),
                json.dumps(route.as_dict()),
                variant.queue_id,
                route.task_kind,
                route.priority,
                variant.sla_hours,
            )
        )
    cursor.executemany(
        "INSERT INTO bench_variant (v, system_id, policy_id, ext_prefix, kind, model_name, "
        "model_version, input, output, outcome, confidence, explanation, explanation_customer, "
        "metadata, route, queue_id, task_kind, priority, sla_hours) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s::jsonb, %s::jsonb, "
        "%s::jsonb, %s, %s, %s, %s)",
        rows,
    )


def stage_create(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS bench_stage")
    cursor.execute(f"CREATE UNLOGGED TABLE bench_stage ({STAGE_COLUMNS})")


def subjects_insert(cursor, *, system_id: int, prefix: str, count: int) -> None:
    """``count`` subjects of ``system_id`` (contact details not sealed: none
    given), and the variants of that system told which ids they have."""
    cursor.execute(
        "INSERT INTO reviews_subject (system_id, reference, locale, created_at) "
        f"SELECT %s, '{prefix}-' || lpad(g::text, 8, '0'), 'en', now() "
        "FROM generate_series(1, %s) g RETURNING id",
        [system_id, count],
    )
    ids = [row[0] for row in cursor.fetchall()]
    base = min(ids)
    assert max(ids) - base + 1 == count, "subject ids are not contiguous"
    cursor.execute(
        "UPDATE bench_variant SET subject_base = %s, subject_count = %s WHERE system_id = %s",
        [base, count, system_id],
    )


CASES_INSERT = f"""
INSERT INTO reviews_case (
    id, reference, system_id, external_id, kind, subject_id, model_name, model_version,
    input, output, confidence, explanation, explanation_customer, metadata, body_digest,
    policy_id, route,
    status, final_outcome, decided_by, notice_token_hash, created_at, finalized_at
)
SELECT
    s.case_id,
    {reference_sql("s.g")},
    v.system_id,
    v.ext_prefix || lpad(s.g::text, 8, '0'),
    v.kind,
    v.subject_base + mod(s.g * 7919, v.subject_count),
    v.model_name,
    v.model_version,
    v.input,
    v.output,
    v.confidence,
    v.explanation,
    v.explanation_customer,
    v.metadata,
    md5('body:' || s.g) || md5('digest:' || s.g),
    v.policy_id,
    v.route,
    CASE s.state
        WHEN 'open' THEN 'pending_review'
        WHEN 'escalation' THEN 'pending_review'
        WHEN 'claimed' THEN 'in_review'
        WHEN 'appeal' THEN 'under_appeal'
        ELSE 'finalized'
    END,
    CASE WHEN s.state IN ('none', 'done', 'appeal') THEN v.outcome ELSE '' END,
    CASE s.state WHEN 'none' THEN 'ai' WHEN 'appeal' THEN 'ai' WHEN 'done' THEN 'human'
        ELSE '' END,
    encode(sha256(convert_to('notice:' || {reference_sql("s.g")}, 'UTF8')), 'hex'),
    s.created_at,
    CASE WHEN s.state IN ('none', 'appeal') THEN s.created_at
         WHEN s.state = 'done' THEN s.created_at + interval '5 hours' END
FROM bench_stage s JOIN bench_variant v USING (v)
ORDER BY s.g
"""

TASKS_INSERT = """
INSERT INTO reviews_reviewtask (
    case_id, kind, queue_id, status, priority, due_at, assignee_id, claimed_at,
    lease_expires_at, fencing_token, created_at
)
SELECT
    s.case_id,
    s.task_kind,
    s.queue_id,
    CASE s.state WHEN 'claimed' THEN 'claimed' WHEN 'done' THEN 'done' ELSE 'open' END,
    s.priority,
    s.due_at,
    s.assignee_id,
    s.claimed_at,
    s.lease_expires_at,
    CASE WHEN s.state IN ('claimed', 'done') THEN 1 ELSE 0 END,
    s.created_at
FROM bench_stage s
WHERE s.state <> 'none'
ORDER BY s.g
"""


def cases_and_tasks_insert(cursor) -> tuple[int, int]:
    """Cases from bench_stage x bench_variant, then their tasks. Returns the counts."""
    cursor.execute(CASES_INSERT)
    cases = cursor.rowcount
    cursor.execute(TASKS_INSERT)
    return cases, cursor.rowcount


def cleanup(cursor) -> None:
    cursor.execute("DROP TABLE IF EXISTS bench_stage")
    cursor.execute("DROP TABLE IF EXISTS bench_variant")

"""PostgreSQL chains trail events itself, and can do it at commit (issue #3).

Every append locks the single chain-head row, so appenders run one at a
time, and the lock is held until the transaction ends. When Python did the
chaining it held the lock over four round trips (lock the head, COPY the
events, update the head, COMMIT); with 16 reviewers claiming on two cores
each of those waited for a CPU, and the lock was held ~10 ms a claim.

``workbench_trail_chain(heads, tails)`` does the whole append in one
statement: lock the head, number and hash the events (the contract formula
of DESIGN §6, the same as ``workbench.services.trail``), insert them, move
the head. A transaction that owns its work can go further and queue its
events in ``workbench_trailpending``: a deferred constraint trigger chains
them while the transaction commits, so the head is locked only for the
chaining and the WAL flush, with no round trip to the client in between.
The pending row is deleted by the same trigger and never outlives its
transaction, so the table is unlogged.

Nothing changes on SQLite, where the IMMEDIATE transaction already holds
the database's write lock and Python does the chaining.
"""

from django.db import migrations

POSTGRES_CREATE = r"""
CREATE UNLOGGED TABLE workbench_trailpending (
    id bigserial PRIMARY KEY,
    events json NOT NULL
);

-- Append events, given as a JSON array of [head, tail] pairs (JSON because
-- the driver encodes it much faster than text arrays): an event's body is
-- head || seq || tail (see PreparedEntry in workbench/services/trail.py);
-- its hash is SHA-256(prev_hash bytes || body as UTF-8). Returns what the
-- caller does not know.
CREATE FUNCTION workbench_trail_chain(events json)
RETURNS TABLE (event_seq bigint, event_prev_hash text, event_hash text) AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    seqs bigint[] := '{}';
    bodies text[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
    body text;
    i int := 0;
    pair json;
BEGIN
    -- The lock every appender queues on.
    SELECT h.seq, h.hash INTO last_seq, last_hash
    FROM workbench_trailhead h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO workbench_trailhead (id, seq, hash)
        VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT h.seq, h.hash INTO last_seq, last_hash
        FROM workbench_trailhead h WHERE h.id = 1 FOR UPDATE;
    END IF;
    FOR pair IN SELECT json_array_elements(events) LOOP
        i := i + 1;
        last_seq := last_seq + 1;
        body := (pair ->> 0) || last_seq::text || (pair ->> 1);
        seqs[i] := last_seq;
        bodies[i] := body;
        prevs[i] := last_hash;
        last_hash := encode(sha256(decode(last_hash, 'hex') || convert_to(body, 'UTF8')), 'hex');
        hashes[i] := last_hash;
    END LOOP;
    INSERT INTO workbench_trailevent (seq, body, prev_hash, hash)
    SELECT * FROM unnest(seqs, bodies, prevs, hashes);
    UPDATE workbench_trailhead SET seq = last_seq, hash = last_hash WHERE id = 1;
    RETURN QUERY SELECT * FROM unnest(seqs, prevs, hashes);
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION workbench_trail_chain_pending() RETURNS trigger AS $$
BEGIN
    DELETE FROM workbench_trailpending WHERE id = NEW.id;
    PERFORM workbench_trail_chain(NEW.events);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Deferred: fires at COMMIT, in the order the rows were inserted.
CREATE CONSTRAINT TRIGGER workbench_trail_chain_at_commit
    AFTER INSERT ON workbench_trailpending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION workbench_trail_chain_pending();
"""

POSTGRES_DROP = """
DROP TABLE IF EXISTS workbench_trailpending;
DROP FUNCTION IF EXISTS workbench_trail_chain_pending();
DROP FUNCTION IF EXISTS workbench_trail_chain(json);
"""


def chain_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)


def chain_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0005_compliance_rollups"),
    ]

    operations = [
        migrations.RunPython(chain_create, chain_drop),
    ]

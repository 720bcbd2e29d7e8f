"""The trail's sequencer (issue #15, DESIGN §6): writers never hold the head.

Until now every writer locked the chain head through its own commit and WAL
flush (``workbench_trail_chain``, migration 0006), so writers committed one
at a time. Now a writer only inserts its events into ``workbench_trailpending``
(logged: a committed row is the durable record of its events); the
sequencer, ``workbench_trail_integrate``, locks the head and moves every
committed pending row into the chain in ``id`` order, many per transaction.

``workbench_trail_integrate(max_rows, wait)``: with ``wait`` false a caller
that finds the head locked (another integration under way) leaves at once,
returning no row. Each statement of the function takes a fresh snapshot
(READ COMMITTED), so the rows read after the head is locked are all those
committed by then. Returns the head before and after, and for each row
integrated the seconds it waited (from ``recorded_at``, by the database's
clock) and its number of events.

The old at-commit trigger and the one-statement append are dropped.
"""

from django.db import migrations, models
from django.utils import timezone

POSTGRES_DROP_OLD = """
DROP TRIGGER IF EXISTS workbench_trail_chain_at_commit ON workbench_trailpending;
DROP TABLE IF EXISTS workbench_trailpending;
DROP FUNCTION IF EXISTS workbench_trail_chain_pending();
DROP FUNCTION IF EXISTS workbench_trail_chain(json);
"""

POSTGRES_CREATE = r"""
CREATE FUNCTION workbench_trail_integrate(max_rows int, wait boolean)
RETURNS TABLE (before_seq bigint, after_seq bigint, waited float8[], sizes int[]) AS $$
DECLARE
    start_seq bigint;
    last_seq bigint;
    last_hash text;
    seqs bigint[] := '{}';
    bodies text[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
    ids bigint[] := '{}';
    recs timestamptz[] := '{}';
    ns int[] := '{}';
    body text;
    i int := 0;
    pending record;
    pair json;
BEGIN
    IF wait THEN
        SELECT h.seq, h.hash INTO last_seq, last_hash
        FROM workbench_trailhead h WHERE h.id = 1 FOR UPDATE;
    ELSE
        SELECT h.seq, h.hash INTO last_seq, last_hash
        FROM workbench_trailhead h WHERE h.id = 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM workbench_trailhead h WHERE h.id = 1) THEN
            RETURN;  -- taken by another integration, and not waiting
        END IF;
        INSERT INTO workbench_trailhead (id, seq, hash)
        VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT h.seq, h.hash INTO last_seq, last_hash
        FROM workbench_trailhead h WHERE h.id = 1 FOR UPDATE;
    END IF;
    start_seq := last_seq;
    FOR pending IN
        SELECT p.id, p.events::json AS events, p.recorded_at
        FROM workbench_trailpending p ORDER BY p.id LIMIT max_rows
    LOOP
        ids := ids || pending.id;
        recs := recs || pending.recorded_at;
        ns := ns || json_array_length(pending.events);
        FOR pair IN SELECT json_array_elements(pending.events) LOOP
            i := i + 1;
            last_seq := last_seq + 1;
            body := (pair ->> 0) || last_seq::text || (pair ->> 1);
            seqs[i] := last_seq;
            bodies[i] := body;
            prevs[i] := last_hash;
            last_hash := encode(
                sha256(decode(last_hash, 'hex') || convert_to(body, 'UTF8')), 'hex');
            hashes[i] := last_hash;
        END LOOP;
    END LOOP;
    IF i > 0 THEN
        INSERT INTO workbench_trailevent (seq, body, prev_hash, hash)
        SELECT * FROM unnest(seqs, bodies, prevs, hashes);
        UPDATE workbench_trailhead SET seq = last_seq, hash = last_hash WHERE id = 1;
    END IF;
    IF array_length(ids, 1) > 0 THEN
        DELETE FROM workbench_trailpending WHERE id = ANY(ids);
    END IF;
    -- How long each change waited, by the database's clock (as /readyz measures).
    RETURN QUERY SELECT start_seq, last_seq,
        ARRAY(SELECT extract(epoch FROM clock_timestamp() - r)::float8 FROM unnest(recs) r),
        ns;
END;
$$ LANGUAGE plpgsql;
"""

POSTGRES_DROP = "DROP FUNCTION IF EXISTS workbench_trail_integrate(int, boolean);"


def sequencer_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)


def sequencer_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)


def old_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP_OLD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0009_ai_system_admin_and_webhooks"),
    ]

    operations = [
        # Not reversible to 0006's chaining: going back needs the pending rows
        # integrated first (run the sequencer), then 0006 re-applied by hand.
        migrations.RunPython(old_drop, migrations.RunPython.noop),
        migrations.CreateModel(
            name="TrailPending",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("events", models.TextField()),
                ("recorded_at", models.DateTimeField(default=timezone.now)),
            ],
        ),
        migrations.RunPython(sequencer_create, sequencer_drop),
    ]

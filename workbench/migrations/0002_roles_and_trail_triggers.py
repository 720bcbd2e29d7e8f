"""The five role groups (contract names), the chain head row, and the
triggers that make the trail table append-only in PostgreSQL and SQLite."""

from django.db import migrations

ROLES = ["reviewer", "appeal_reviewer", "supervisor", "compliance", "admin"]

POSTGRES_TRIGGERS = """
CREATE OR REPLACE FUNCTION workbench_trail_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'workbench_trailevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER workbench_trail_no_update BEFORE UPDATE ON workbench_trailevent
    FOR EACH ROW EXECUTE FUNCTION workbench_trail_append_only();
CREATE TRIGGER workbench_trail_no_delete BEFORE DELETE ON workbench_trailevent
    FOR EACH ROW EXECUTE FUNCTION workbench_trail_append_only();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS workbench_trail_no_update ON workbench_trailevent;
DROP TRIGGER IF EXISTS workbench_trail_no_delete ON workbench_trailevent;
DROP FUNCTION IF EXISTS workbench_trail_append_only();
"""
SQLITE_TRIGGERS = [
    """CREATE TRIGGER workbench_trail_no_update BEFORE UPDATE ON workbench_trailevent
       BEGIN SELECT RAISE(ABORT, 'workbench_trailevent is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER workbench_trail_no_delete BEFORE DELETE ON workbench_trailevent
       BEGIN SELECT RAISE(ABORT, 'workbench_trailevent is append-only: DELETE refused'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS workbench_trail_no_update",
    "DROP TRIGGER IF EXISTS workbench_trail_no_delete",
]


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_TRIGGERS, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


def roles_create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    apps.get_model("workbench", "TrailHead").objects.get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("workbench", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(roles_create, migrations.RunPython.noop),
        migrations.RunPython(triggers_create, triggers_drop),
    ]

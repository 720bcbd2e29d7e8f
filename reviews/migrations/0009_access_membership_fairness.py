"""Queue members, hold limit and release cooldown; who released a task last;
compliance officers' case views and reviewers' recusals (issue #12).

Going back on SQLite, removing ``released_by`` (a foreign key) rebuilds the
task table, which drops the queue-count triggers of 0005: the first
operation, run last on the way back, puts them back.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

counts = importlib.import_module("reviews.migrations.0005_queue_counts")


def sqlite_triggers_restore(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in counts.SQLITE_DROP + counts.SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('reviews', '0008_customer_words_and_wording'),
        ('workbench', '0009_ai_system_admin_and_webhooks'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, sqlite_triggers_restore),
        migrations.CreateModel(
            name='CaseView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purpose', models.TextField()),
                ('purpose_sha256', models.CharField(max_length=64)),
                ('viewed_at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
        ),
        migrations.CreateModel(
            name='Recusal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.TextField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name='queue',
            name='hold_limit',
            field=models.PositiveSmallIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name='queue',
            name='members',
            field=models.ManyToManyField(blank=True, related_name='queue_memberships', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='queue',
            name='release_cooldown_minutes',
            field=models.PositiveIntegerField(db_default=30, default=30),
        ),
        migrations.AddField(
            model_name='reviewtask',
            name='cooldown_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='reviewtask',
            name='released_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='reviewtask',
            index=models.Index(condition=models.Q(('status', 'claimed')), fields=['assignee'], name='task_held_by'),
        ),
        migrations.AddConstraint(
            model_name='queue',
            constraint=models.CheckConstraint(condition=models.Q(('hold_limit__gte', 1)), name='queue_hold_limit_1_up'),
        ),
        migrations.AddField(
            model_name='caseview',
            name='case',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='views', to='reviews.case'),
        ),
        migrations.AddField(
            model_name='caseview',
            name='viewer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='case_views', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='recusal',
            name='case',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recusals', to='reviews.case'),
        ),
        migrations.AddField(
            model_name='recusal',
            name='reviewer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recusals', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='recusal',
            name='task',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recusals', to='reviews.reviewtask'),
        ),
    ]

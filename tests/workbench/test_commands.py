from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from workbench.models import AISystem, APIKey, TrailEvent, User
from workbench.services import api_key_authenticate


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_ai_system_prints_the_secret_then_the_key_last(db):
    lines = run(
        "create_ai_system",
        "claims-ai",
        "--name",
        "Claims",
        "--kind",
        "claim_decision",
        "--callback-url",
        "https://claims.example.org/hook",
    )
    system = AISystem.objects.get(slug="claims-ai")
    assert lines[-2] == f"callback_secret: {system.callback_secret}"
    key = api_key_authenticate(plaintext=lines[-1], scope="ingest")
    assert key.system == system
    assert lines[-1] not in APIKey.objects.values_list("secret_hash", flat=True)
    assert TrailEvent.objects.filter(action="system.created", system="claims-ai").exists()


def test_a_given_callback_secret_is_not_printed(db):
    lines = run(
        "create_ai_system",
        "bot",
        "--name",
        "Bot",
        "--kind",
        "chatbot_answer",
        "--callback-secret",
        "s3cret",
    )
    assert not any(line.startswith("callback_secret") for line in lines)
    assert AISystem.objects.get().callback_secret == "s3cret"


def test_create_ai_system_refuses_a_duplicate(db):
    run("create_ai_system", "bot", "--name", "Bot", "--kind", "generic")
    with pytest.raises(CommandError, match="exists already"):
        run("create_ai_system", "bot", "--name", "Bot", "--kind", "generic")


def test_create_api_key_with_compliance_scope(db):
    run("create_ai_system", "bot", "--name", "Bot", "--kind", "generic")
    key = run("create_api_key", "bot", "--scope", "compliance")[-1]
    assert api_key_authenticate(plaintext=key, scope="compliance").scope == "compliance"
    with pytest.raises(CommandError, match="no AI system"):
        run("create_api_key", "nope")


def test_create_user_with_a_manager(db):
    run("create_user", "sup.sam", "--role", "supervisor", "--password", "pw-sam-123")
    run("create_user", "rev.alice", "--role", "reviewer", "--manager", "sup.sam")
    alice = User.objects.get(username="rev.alice")
    assert alice.manager.username == "sup.sam"
    assert alice.has_role("reviewer") and not alice.has_usable_password()
    assert User.objects.get(username="sup.sam").check_password("pw-sam-123")
    with pytest.raises(CommandError, match="no manager"):
        run("create_user", "rev.bob", "--role", "reviewer", "--manager", "ghost")
    assert TrailEvent.objects.filter(action="user.created").count() == 2


def test_trail_verify_exits_non_zero_naming_the_seq(system):
    from django.db import connection

    assert run("trail_verify")[0].startswith("trail OK")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER workbench_trail_no_update")
        else:
            cursor.execute("ALTER TABLE workbench_trailevent DISABLE TRIGGER USER")
        cursor.execute("UPDATE workbench_trailevent SET body = body || ' ' WHERE seq = 2")
    with pytest.raises(CommandError, match="trail broken at seq 2"):
        run("trail_verify")


# --- The operator, the kill switch, webhook topics ----------------------------------------------


def actor_of(action: str) -> dict:
    import json

    return json.loads(TrailEvent.objects.filter(action=action).latest("seq").body)["actor"]


def test_commands_name_the_operator_as_a_person(db):
    import getpass

    run("create_ai_system", "bot", "--name", "Bot", "--kind", "generic")
    assert actor_of("system.created") == {"type": "user", "id": getpass.getuser()}
    assert actor_of("system.key_created") == {"type": "user", "id": getpass.getuser()}
    run("create_api_key", "bot", "--actor", "ops.maria")
    assert actor_of("system.key_created") == {"type": "user", "id": "ops.maria"}
    run("create_user", "rev.bob", "--role", "reviewer", "--actor", "ops.maria")
    assert actor_of("user.created") == {"type": "user", "id": "ops.maria"}


@pytest.mark.parametrize("name", ["", "   ", "bad\nname", "x" * 151])
def test_a_bad_actor_is_refused_before_anything_changes(db, name):
    with pytest.raises(CommandError, match="--actor"):
        run("create_ai_system", "bot", "--name", "Bot", "--kind", "generic", "--actor", name)
    assert not AISystem.objects.exists()


def test_every_command_that_changes_things_takes_actor():
    from django.core.management import get_commands, load_command_class

    from workbench.management.base import OperatorCommand

    changing = [
        "create_ai_system",
        "create_api_key",
        "create_user",
        "load_policy",
        "load_reason_codes",
        "legal_hold",
        "erase_subject",
        "subject_access",
        "trail_export",
        "stop_ai_system",
        "start_ai_system",
    ]
    commands = get_commands()
    for name in changing:
        assert isinstance(load_command_class(commands[name], name), OperatorCommand), name


def test_stop_and_start_ai_system_keep_the_reason_readable(system):
    from workbench.models import SystemSwitch

    lines = run("stop_ai_system", "claims-ai", "--reason", "Drift alarm", "--actor", "ops.maria")
    assert lines == ["stopped claims-ai: every case it sends goes to a person"]
    system.refresh_from_db()
    assert system.stopped and system.switch_reason == "Drift alarm"
    assert system.switched_by == "ops.maria"
    assert actor_of("system.stopped") == {"type": "user", "id": "ops.maria"}
    assert run("stop_ai_system", "claims-ai", "--reason", "again") == [
        "claims-ai is stopped already; nothing changed"
    ]
    run("start_ai_system", "claims-ai", "--reason", "Retrained")
    system.refresh_from_db()
    assert not system.stopped
    assert list(SystemSwitch.objects.order_by("at", "pk").values_list("stopped", "reason")) == [
        (True, "Drift alarm"),
        (False, "Retrained"),
    ]
    assert TrailEvent.objects.filter(action__in=["system.stopped", "system.restarted"]).count() == 2


def test_the_kill_switch_commands_refuse_bad_input(system):
    with pytest.raises(CommandError, match="--reason"):
        run("stop_ai_system", "claims-ai")
    with pytest.raises(CommandError, match="give a reason"):
        run("stop_ai_system", "claims-ai", "--reason", "   ")
    with pytest.raises(CommandError, match="no AI system"):
        run("stop_ai_system", "nope", "--reason", "x")
    system.refresh_from_db()
    assert not system.stopped


def test_create_ai_system_with_webhook_topics(db):
    run(
        "create_ai_system",
        "bot",
        "--name",
        "Bot",
        "--kind",
        "generic",
        "--webhook-topics",
        "appeal.filed, case.routed",
    )
    assert AISystem.objects.get().webhook_topics == ["case.routed", "appeal.filed"]
    with pytest.raises(CommandError, match="unknown webhook topic 'case.exploded'"):
        run(
            "create_ai_system",
            "b2",
            "--name",
            "B",
            "--kind",
            "generic",
            "--webhook-topics",
            "case.exploded",
        )


def test_create_ai_system_refuses_a_private_callback_url_when_the_rule_is_on(db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(CommandError, match="loopback"):
        run(
            "create_ai_system",
            "bot",
            "--name",
            "Bot",
            "--kind",
            "generic",
            "--callback-url",
            "https://localhost/hook",
        )
    with pytest.raises(CommandError, match="must use https"):
        run(
            "create_ai_system",
            "bot",
            "--name",
            "Bot",
            "--kind",
            "generic",
            "--callback-url",
            "http://93.184.215.14/hook",
        )
    assert not AISystem.objects.exists()

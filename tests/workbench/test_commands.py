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

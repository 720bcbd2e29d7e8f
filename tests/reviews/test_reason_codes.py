import csv
import getpass
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from reviews.demo import CLAIMS, REFUSAL_REASON, SUPPORT, chat_cases, claim_cases
from reviews.management.commands.load_policy import policy_read
from reviews.management.commands.load_reason_codes import reason_codes_read
from reviews.models import ReasonCode
from reviews.selectors import reason_codes_for
from reviews.services import LoadResult, reason_codes_load
from reviews.services.reason_codes import catalog_digest
from tests import factories
from workbench.errors import Invalid
from workbench.models import AISystem, TrailEvent
from workbench.services import trail_verify

DATA = Path(settings.BASE_DIR) / "data" / "claims"
CARC_WORDING = DATA / "carc_customer_wording.csv"


def row(code: str, description: str | None = None, customer_text: str | None = None) -> dict:
    return {
        "code": code,
        "description": description or f"Description of {code}",
        "customer_text": customer_text or f"Your claim was adjusted for reason {code}.",
    }


def load(system, rows) -> LoadResult:
    return reason_codes_load(system=system, rows=rows, actor=factories.ACTOR)


def loaded_events():
    return TrailEvent.objects.filter(action="system.reason_codes_loaded")


def event_body(event: TrailEvent) -> dict:
    return json.loads(event.body)


def catalog(system) -> dict[str, tuple[str, str, bool]]:
    return {
        rc.code: (rc.description, rc.customer_text, rc.active)
        for rc in ReasonCode.objects.filter(system=system)
    }


def csv_file(tmp_path: Path, text: str, name: str = "codes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args) -> str:
    out = StringIO()
    call_command("load_reason_codes", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- The service ----------------------------------------------------------------------


def test_loading_creates_the_codes_and_records_one_event(system):
    result = load(system, [row("CO-97"), row("CO-50"), row("PR-1")])

    assert (result.created, result.updated, result.deactivated, result.unchanged) == (3, 0, 0, 0)
    assert [rc.code for rc in reason_codes_for(system=system)] == ["CO-50", "CO-97", "PR-1"]
    assert catalog(system)["CO-50"] == (
        "Description of CO-50",
        "Your claim was adjusted for reason CO-50.",
        True,
    )
    (event,) = loaded_events()
    assert event.system == system.slug
    assert event_body(event)["data"] == {
        "codes": 3,
        "created": 3,
        "updated": 0,
        "deactivated": 0,
        "sha256": result.sha256,
    }
    assert re.fullmatch(r"[0-9a-f]{64}", result.sha256)
    assert trail_verify().ok


def test_a_new_file_updates_changed_codes_and_deactivates_missing_ones(system):
    load(system, [row("CO-50"), row("CO-97"), row("PR-1")])

    result = load(
        system,
        [
            row("CO-50", customer_text="New wording for CO-50."),
            row("CO-97"),
            row("CO-4"),
        ],
    )

    assert (result.created, result.updated, result.deactivated, result.unchanged) == (1, 1, 1, 1)
    assert catalog(system)["CO-50"][1] == "New wording for CO-50."
    # Not deleted: old decisions refer to it.
    assert catalog(system)["PR-1"][2] is False
    assert [rc.code for rc in reason_codes_for(system=system)] == ["CO-4", "CO-50", "CO-97"]
    assert loaded_events().count() == 2
    assert event_body(loaded_events().order_by("seq").last())["data"]["deactivated"] == 1


def test_a_deactivated_code_listed_again_is_active_again(system):
    load(system, [row("CO-50"), row("PR-1")])
    load(system, [row("CO-50")])

    result = load(system, [row("CO-50"), row("PR-1")])

    assert (result.created, result.updated, result.deactivated) == (0, 1, 0)
    assert catalog(system)["PR-1"][2] is True


def test_reloading_the_same_catalog_changes_nothing_and_records_nothing(system):
    rows = [row("CO-50"), row("CO-97"), row("PR-1")]
    first = load(system, rows)
    before = catalog(system)

    # Another order, other line ends and stray spaces: the same catalog.
    again = [
        {**rows[2], "customer_text": "  " + rows[2]["customer_text"] + "\r\n"},
        rows[0],
        rows[1],
    ]
    result = load(system, again)

    assert not result.changed
    assert (result.created, result.updated, result.deactivated, result.unchanged) == (0, 0, 0, 3)
    assert result.sha256 == first.sha256
    assert catalog(system) == before
    assert loaded_events().count() == 1


def test_the_digest_is_of_the_normalized_content():
    entries = [row("CO-50"), row("PR-1")]
    assert catalog_digest(entries) == catalog_digest(list(reversed(entries)))
    changed = [row("CO-50", customer_text="Other words."), row("PR-1")]
    assert catalog_digest(changed) != catalog_digest(entries)


def test_a_file_with_bad_rows_is_refused_whole_naming_each_line_and_field(system):
    load(system, [row("CO-50")])
    before = catalog(system)
    rows = [
        row("CO-97"),  # line 2: fine, but not written either
        {"code": "", "description": "No code", "customer_text": "Text."},
        row("X" * 33),
        {"code": "CO-4", "description": " ", "customer_text": None},
        row("CO-5", customer_text="See <b>your plan</b>."),
        row("CO-6", customer_text="y" * 1001),
        row("CO-97"),  # duplicate of line 2
        {**row("CO-7"), "notes": "internal"},
        row("CO 8"),
        row("CO-9", description="Bad\x00byte"),
    ]

    with pytest.raises(Invalid) as refused:
        load(system, rows)

    assert refused.value.code == "reason_codes_invalid"
    assert [(p["line"], p["field"]) for p in refused.value.fields] == [
        (3, "code"),
        (4, "code"),
        (5, "description"),
        (5, "customer_text"),
        (6, "customer_text"),
        (7, "customer_text"),
        (8, "code"),
        (9, "notes"),
        (10, "code"),
        (11, "description"),
    ]
    assert "line 8, code: 'CO-97' is listed already on line 2" in refused.value.message
    assert catalog(system) == before
    assert loaded_events().count() == 1


def test_rows_may_say_which_line_they_come_from(system):
    rows = [{**row("CO-50"), "line": 2}, {**row("CO-97"), "line": 5, "customer_text": ""}]

    with pytest.raises(Invalid) as refused:
        load(system, rows)

    assert refused.value.fields == [{"line": 5, "field": "customer_text", "message": "required"}]


def test_customer_text_of_exactly_1000_characters_is_accepted(system):
    result = load(system, [row("CO-50", customer_text="y" * 1000)])
    assert result.created == 1


def test_an_empty_file_cannot_empty_a_catalog(system):
    load(system, [row("CO-50")])

    with pytest.raises(Invalid) as refused:
        load(system, [])

    assert refused.value.code == "reason_codes_empty"
    assert catalog(system)["CO-50"][2] is True


def test_catalogs_are_per_system(system, chat_system):
    load(system, [row("tone"), row("CO-50")])
    load(chat_system, [row("tone"), row("wrong-answer")])

    load(chat_system, [row("wrong-answer")])

    assert [rc.code for rc in reason_codes_for(system=system)] == ["CO-50", "tone"]
    assert [rc.code for rc in reason_codes_for(system=chat_system)] == ["wrong-answer"]
    assert set(loaded_events().values_list("system", flat=True)) == {"claims-ai", "support-bot"}


# --- The command ----------------------------------------------------------------------


def test_load_reason_codes_loads_the_shipped_carc_wording(system):
    shipped = read_csv(CARC_WORDING)

    output = run("claims-ai", CARC_WORDING)

    assert f"{len(shipped)} created, 0 updated, 0 deactivated" in output
    codes = reason_codes_for(system=system)
    assert [rc.code for rc in codes] == sorted(r["code"] for r in shipped)
    by_code = {rc.code: rc for rc in codes}
    assert by_code["CO-50"].customer_text == (
        "Your plan covers this service only when it is medically necessary, and the "
        "information we had did not show that it was."
    )
    # The operator at the command line, as a person (issue 11: not "manage.py").
    operator = {"type": "user", "id": getpass.getuser()}
    assert event_body(loaded_events().get())["actor"] == operator

    assert "unchanged" in run("claims-ai", CARC_WORDING)
    assert loaded_events().count() == 1


def test_the_command_reports_invalid_rows_with_their_line_in_the_file(system, tmp_path):
    path = csv_file(
        tmp_path,
        "code,description,customer_text\n"
        'CO-50,"Not medically necessary,\nacross two lines",Your plan does not cover it.\n'
        "\n"
        "CO-97,Bundled,\n",
    )

    with pytest.raises(CommandError) as refused:
        run("claims-ai", path)

    assert "line 5, customer_text: required" in str(refused.value)
    assert str(path) in str(refused.value)
    assert not ReasonCode.objects.exists()
    assert not loaded_events().exists()


def test_the_command_refuses_a_file_without_customer_wording(system):
    # The bare CARC list has no wording for customers: the message points to ours.
    with pytest.raises(CommandError, match="carc_customer_wording.csv"):
        run("claims-ai", DATA / "carc_claim_adjustment_reason_codes.csv")
    assert not ReasonCode.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("code,text,customer_text\nCO-50,x,y\n", "expected code,description,customer_text"),
        ("code,code,description,customer_text\n", "expected code,description,customer_text"),
        ("code,description,customer_text\nCO-50,a,b,c\n", "line 2: 4 cells"),
        ('code,description,customer_text\nCO-50,"a"b,c\n', "not valid CSV"),
        ("code,description,customer_text\n", "no codes"),
    ],
)
def test_the_command_refuses_bad_csv(system, tmp_path, content, message):
    with pytest.raises(CommandError, match=message):
        run("claims-ai", csv_file(tmp_path, content))
    assert not ReasonCode.objects.exists()


def test_the_command_names_a_missing_system_and_an_unreadable_file(system, tmp_path):
    with pytest.raises(CommandError, match="no AI system 'nope'"):
        run("nope", CARC_WORDING)
    with pytest.raises(CommandError, match="cannot read"):
        run("claims-ai", tmp_path / "missing.csv")
    binary = tmp_path / "codes.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00")
    with pytest.raises(CommandError, match="cannot read"):
        run("claims-ai", binary)


def test_a_byte_order_mark_and_crlf_line_ends_are_read(system, tmp_path):
    path = tmp_path / "excel.csv"
    content = (
        "code,description,customer_text\r\nCO-50,Not necessary,Your plan does not cover it.\r\n"
    )
    path.write_bytes(content.encode("utf-8-sig"))
    assert reason_codes_read(path) == [
        {
            "line": 2,
            "code": "CO-50",
            "description": "Not necessary",
            "customer_text": "Your plan does not cover it.",
        }
    ]


# --- The shipped catalogs -------------------------------------------------------------


def test_the_carc_wording_file_uses_real_codes_with_their_verbatim_descriptions():
    with open(DATA / "carc_claim_adjustment_reason_codes.csv", newline="") as f:
        carc = {r["code"]: r["description"] for r in csv.DictReader(f)}
    with open(DATA / "claim_adjustment_group_codes.csv", newline="") as f:
        groups = {r["code"] for r in csv.DictReader(f)}
    with open(CARC_WORDING, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["code", "description", "customer_text"]
        rows = list(reader)

    assert 40 <= len(rows) <= 239
    for r in rows:
        group, number = r["code"].split("-")
        assert group in groups, r["code"]
        assert int(number) <= 239
        assert r["description"] == carc[number], r["code"]
        text = r["customer_text"]
        assert "you" in text.lower(), r["code"]
        assert len(text) <= 300, r["code"]  # short; the service allows 1000


def test_the_demo_claims_use_only_codes_of_the_catalog():
    catalog_codes = {r["code"] for r in read_csv(CLAIMS.reason_codes_file)}
    used = set()
    for claim in claim_cases(600):
        used |= {reason.code for reason in claim.output.reasons}
        for line in claim.input["lines"]:
            used |= set(line["reason_codes"])
    assert used
    assert used <= catalog_codes, sorted(used - catalog_codes)


def test_the_support_bot_catalog_has_the_demo_refusal_reason():
    codes = {r["code"] for r in policy_read(SUPPORT.policy_file)["reason_codes"]}
    assert 8 <= len(codes) <= 12
    assert REFUSAL_REASON["code"] in codes
    used = {r.code for chat in chat_cases(300) for r in chat.output.reasons}
    assert used <= codes


def test_load_demo_loads_both_catalogs(db):
    call_command("load_demo", "--cases", "4", stdout=StringIO())

    # The claims catalog comes from a CSV file, the chatbot's from its policy.
    claims = AISystem.objects.get(slug=CLAIMS.slug)
    expected = sorted(r["code"] for r in read_csv(CLAIMS.reason_codes_file))
    assert [rc.code for rc in reason_codes_for(system=claims)] == expected
    support = AISystem.objects.get(slug=SUPPORT.slug)
    expected = sorted(r["code"] for r in policy_read(SUPPORT.policy_file)["reason_codes"])
    assert [rc.code for rc in reason_codes_for(system=support)] == expected
    assert loaded_events().count() == 2

    call_command("load_demo", "--cases", "4", stdout=StringIO())
    assert loaded_events().count() == 2
    assert trail_verify().ok


def test_the_admin_lists_and_searches_reason_codes_and_never_deletes_one(system, admin_client):
    load(system, [row("CO-50"), row("PR-1")])

    page = admin_client.get("/admin/reviews/reasoncode/", {"q": "CO-50", "active__exact": "1"})

    assert page.status_code == 200
    assert "CO-50" in page.content.decode()
    assert "PR-1" not in page.content.decode()
    # Codes are added and edited there (tests/reviews/test_admin.py), never deleted.
    code = ReasonCode.objects.get(system=system, code="CO-50")
    assert admin_client.get(f"/admin/reviews/reasoncode/{code.pk}/delete/").status_code == 403


# --- Per-locale wording and grounds (issue 13 items 2 and 4) ------------------------------


def test_a_catalog_without_the_new_columns_keeps_its_digest():
    import hashlib

    entries = [row("CO-50"), row("PR-1")]
    before = json.dumps(
        sorted([e["code"], e["description"], e["customer_text"]] for e in entries),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert catalog_digest(entries) == hashlib.sha256(before.encode()).hexdigest()
    worded = [{**row("CO-50"), "ground": "Plan 4.1"}, row("PR-1")]
    assert catalog_digest(worded) != catalog_digest(entries)


def test_customer_texts_may_be_given_per_locale_as_columns_or_mappings(system, tmp_path):
    path = csv_file(
        tmp_path,
        "code,description,customer_text,customer_text_es,ground,ground_es,explanation\n"
        "CO-50,Not necessary,Not medically necessary.,No es médicamente necesario.,"
        "Plan 4.1,Plan 4.1 (es),The diagnosis.\n"
        "CO-97,Bundled,Paid with another service.,,,,\n",
    )
    run("claims-ai", path)
    load(
        system,
        [
            *reason_codes_read(path),
            {
                "code": "PR-1",
                "description": "Deductible",
                "customer_text": {"en": "Your deductible.", "es": "Su franquicia."},
                "ground": {"es": "Póliza, cláusula 3."},
            },
        ],
    )
    by_code = {rc.code: rc for rc in ReasonCode.objects.filter(system=system)}
    assert (
        by_code["CO-50"].ground == "Plan 4.1" and by_code["CO-50"].explanation == "The diagnosis."
    )
    assert by_code["CO-50"].translations == {
        "es": {"customer_text": "No es médicamente necesario.", "ground": "Plan 4.1 (es)"}
    }
    assert by_code["CO-97"].translations == {} and by_code["CO-97"].ground == ""
    assert by_code["PR-1"].customer_text == "Your deductible."
    # A ground given only in Spanish is the base text: there is no English one.
    assert by_code["PR-1"].ground == "Póliza, cláusula 3."
    assert by_code["PR-1"].translations == {"es": {"customer_text": "Su franquicia."}}


def test_a_bad_translation_is_refused_with_its_column(system):
    with pytest.raises(Invalid) as refused:
        load(
            system,
            [
                {**row("CO-50"), "customer_text_es": "<b>No</b>"},
                {**row("CO-97"), "ground_es": "x" * 2001},
                {**row("PR-1"), "customer_text": {"en": "Fine.", "es": 5}},
            ],
        )
    assert [(p["line"], p["field"]) for p in refused.value.fields] == [
        (2, "customer_text_es"),
        (3, "ground_es"),
        (4, "customer_text_es"),
    ]
    assert not ReasonCode.objects.exists()


def test_the_command_names_an_unknown_column_and_the_optional_ones(system, tmp_path):
    path = csv_file(tmp_path, "code,description,customer_text,notes\nCO-50,a,b,c\n")
    with pytest.raises(CommandError, match="optionally, ground, explanation"):
        run("claims-ai", path)

"""The customer's notice page: the statement of reasons and the appeal form;
and the appeal reviewer's page."""

import re
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.utils import timezone

from escalations.models import Appeal
from reviews.models import Case
from reviews.services.assignment import task_claim_next
from reviews.services.notices import notice_token, notice_url
from tests import factories
from tests.factories import client_for, decided_case
from workbench.models import TrailEvent

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def catalog(system):
    from reviews.models import ReasonCode

    for n in range(200):
        code, text = factories.carc_codes()[n]
        ReasonCode.objects.get_or_create(
            system=system,
            code=f"CO-{code}",
            defaults={"description": text, "customer_text": f"Plain words for {code}."},
        )


def url(case: Case) -> str:
    return f"/notice/{notice_token(case.reference)}/"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def key(response) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', response.content.decode())[1]


def statement_opened(staff, case, task) -> dict:
    """Open the customer's statement on the appeal page as the holder of
    ``task``; returns the decision form's hidden fields."""
    page = staff.get(f"/appeals/{case.reference}/")
    form = {"task": task.pk, "fencing_token": task.fencing_token, "idempotency_key": key(page)}
    staff.post(f"/appeals/{case.reference}/", {**form, "action": "open"})
    return form


def appeal_post(client, case, response, statement="The visit was necessary.", **files):
    data = {"statement": statement, "idempotency_key": key(response)}
    if files:
        data["evidence"] = list(files.values())
    return client.post(url(case), data)


# --- Reading the notice -------------------------------------------------------------------------


def test_the_notice_states_the_decision_reasons_facts_and_how_to_appeal(system, alice, catalog):
    case = decided_case(system, alice)
    response = Client().get(url(case))
    assert response.status_code == 200
    page = text(response)
    assert case.reference in page
    assert "The outcome is: deny." in page  # the test policy has no outcome wording
    code = case.output["reasons"][0]["code"]
    assert f"Plain words for {code.removeprefix('CO-')}." in page  # the customer wording
    assert "Office visit" in page and "180.00" in page  # the facts relied on
    assert "Automated means were used" in page and "claims-triage" in page
    assert "A person reviewed it" in page
    # The policy's version, and why it sent the case to a person in plain
    # words: never the rule's internal name (issue 13).
    assert "version 1" in page and "adverse-needs-human" not in page
    assert "Our policy sends every decision that goes against you to a person." in page
    closes = case.finalized_at + timedelta(days=184)
    assert f"until {closes:%-d %B %Y}" in page  # a date, not a number of days
    for label in ("Your statement", "Evidence", "File appeal"):
        assert label in page
    assert 'name="robots" content="noindex' in page


def test_an_ai_only_decision_says_no_person_reviewed_it(system):
    case = factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    case = Case.objects.get(pk=case.pk)
    if case.status != "finalized":
        pytest.skip("sampled for QA")  # deterministic: never for this id
    page = text(Client().get(url(case)))
    assert "No person reviewed it" in page


def test_a_case_under_review_shows_the_date_of_the_answer_and_no_form(system):
    case = factories.ingest(system, factories.claim_payload(1))
    page = text(Client().get(url(case)))
    assert "A person is reviewing this decision" in page
    task = case.tasks.get()
    assert f"You will have an answer by {task.due_at:%-d %B %Y}" in page
    assert "File appeal" not in page


@pytest.mark.parametrize("token", ["forged", "A" * 43, notice_token("WB-NONE-HERE")])
def test_a_forged_token_is_404_without_saying_whether_a_case_exists(system, alice, token):
    decided_case(system, alice)
    response = Client().get(f"/notice/{token}/")
    assert response.status_code == 404


def test_links_sent_before_a_change_of_the_link_key_keep_working(system, settings, caplog):
    before = factories.ingest(system, factories.claim_payload(1))
    sent = notice_url(before)
    settings.NOTICE_LINK_KEY_FALLBACKS = [settings.NOTICE_LINK_KEY]
    settings.NOTICE_LINK_KEY = "a-new-notice-link-key"
    after = factories.ingest(system, factories.claim_payload(2))
    # The old link opens, and is the one handed out again; new cases get the new key's.
    assert Client().get(urlsplit(sent).path).status_code == 200
    assert notice_url(before) == sent
    assert notice_url(after) == f"http://testserver/notice/{notice_token(after.reference)}/"
    assert Client().get(url(after)).status_code == 200
    # Without the old key, a link for the older case can no longer be made: logged.
    settings.NOTICE_LINK_KEY_FALLBACKS = []
    assert Client().get(urlsplit(sent).path).status_code == 200  # its hash is kept
    notice_url(before)
    assert f"notice link of case {before.reference}" in caplog.text


@pytest.mark.parametrize(
    ("locale", "lang", "button"),
    [
        ("es", "es", "Presentar recurso"),
        ("es-MX", "es", "Presentar recurso"),
        ("fr", "en", "File appeal"),
    ],
)
def test_the_page_is_in_the_subjects_locale_where_a_translation_exists(
    system, alice, locale, lang, button
):
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": locale}
    case = decided_case(system, alice, subject=subject)
    response = Client().get(url(case))
    assert f'<html lang="{lang}">' in response.content.decode()
    assert button in text(response)


# --- Filing an appeal -------------------------------------------------------------------------


def test_filing_an_appeal_with_a_pdf_then_following_it(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(
        client, case, page, evidence=SimpleUploadedFile("letter.pdf", PDF, "application/pdf")
    )
    assert response.status_code == 302 and response["Location"] == url(case)
    after = text(client.get(url(case)))
    assert "Your appeal was received" in after
    assert "Received" in after and "You will have an answer by" in after
    assert "File appeal" not in after
    appeal = Appeal.objects.get()
    assert appeal.evidence.get().content_type == "application/pdf"

    # The appeal reviewer decides: the page then shows the outcome and reasons.
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    form = statement_opened(staff, case, task)
    decided = staff.post(
        f"/appeals/{case.reference}/",
        {
            **form,
            "action": "decide",
            "outcome": "overturned",
            "final_outcome": "approve",
            "reasons": "The letter from your doctor shows the visit was needed.",
        },
    )
    assert decided.status_code == 302
    final = text(client.get(url(case)))
    assert "The decision was overturned." in final
    assert "The letter from your doctor shows the visit was needed." in final
    assert "Under review by a person" in final and "Decided" in final
    assert "The outcome is: approve." in final


def test_html_in_the_statement_is_shown_escaped_to_staff(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)), statement="<script>alert('x')</script>")
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    statement_opened(staff, case, task)
    html = staff.get(f"/appeals/{case.reference}/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_an_empty_statement_or_a_disguised_file_is_refused_and_nothing_is_filed(system, alice):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(client, case, page, statement="  ")
    assert response.status_code == 422
    assert "Tell us why you disagree" in text(response)
    fake = SimpleUploadedFile("letter.pdf", b"MZ\x90\x00 this is an executable")
    response = appeal_post(client, case, page, evidence=fake)
    assert response.status_code == 422
    assert "is not a PDF, JPEG or PNG file" in text(response)
    assert Appeal.objects.count() == 0


def test_a_body_over_the_limit_is_refused_before_it_is_read(system, alice):
    case = decided_case(system, alice)
    response = Client().post(
        url(case),
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert "too large" in text(response)
    assert Appeal.objects.count() == 0


def test_two_tabs_filing_at_once_file_one_appeal(system, alice):
    case = decided_case(system, alice)
    first, second = Client(), Client()
    page_one, page_two = first.get(url(case)), second.get(url(case))
    assert appeal_post(first, case, page_one).status_code == 302
    response = appeal_post(second, case, page_two)
    assert response.status_code == 302
    assert "Your appeal was already received" in text(second.get(url(case)))
    assert Appeal.objects.count() == 1


def test_a_late_filing_names_the_date_the_window_closed_and_the_routes_left(system, alice):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    closes = case.finalized_at + timedelta(days=184)
    with time_machine.travel(closes + timedelta(hours=1)):
        response = appeal_post(client, case, page)
    assert response.status_code == 409
    body = text(response)
    assert "Your appeal was not filed." in body
    assert f"ended on {closes:%-d %B %Y}" in body
    assert Appeal.objects.count() == 0


@override_settings(NOTICE_RATE_GET="3/m")
def test_the_notice_page_is_rate_limited(system, alice):
    case = decided_case(system, alice)
    # An address no other test uses; the cache's keys are the run's own
    # (a prefix per process), so no count carries over from elsewhere.
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [client.get(url(case)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_notice_after_erasure_says_the_data_was_erased(system, alice):
    from escalations.services import subject_erase
    from workbench.services import Actor

    case = decided_case(system, alice)
    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        subject_erase(reference=case.subject.reference, by=Actor.workbench("tests"))
        page = text(Client().get(url(case)))
    assert "was erased on" in page
    assert "The outcome is: deny." in page


# --- The appeal reviewer's page -------------------------------------------------------------


def test_the_decision_appealed_shows_only_after_opening_the_statement(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    # The case URL leads an appeal reviewer to the appeal page.
    assert staff.get(f"/cases/{case.reference}/")["Location"] == f"/appeals/{case.reference}/"
    before = staff.get(f"/appeals/{case.reference}/")
    assert "Open the customer's statement" in before.content.decode()
    assert "The decision appealed" not in text(before)
    assert "The visit was necessary." not in text(before)
    staff.post(
        f"/appeals/{case.reference}/",
        {
            "task": task.pk,
            "fencing_token": task.fencing_token,
            "idempotency_key": key(before),
            "action": "open",
        },
    )
    after = text(staff.get(f"/appeals/{case.reference}/"))
    assert "The visit was necessary." in after
    assert "The decision appealed" in after and "Decide appeal" in after
    assert TrailEvent.objects.filter(action="appeal.statement_opened").count() == 1


def test_evidence_is_served_to_the_reviewer_who_opened_the_statement_only(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)), evidence=SimpleUploadedFile("a.pdf", PDF))
    item = Appeal.objects.get().evidence.get()
    link = f"/appeals/{case.reference}/evidence/{item.pk}/"
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    assert staff.get(link).status_code == 404  # not opened yet
    statement_opened(staff, case, task)
    response = staff.get(link)
    assert response.status_code == 200
    assert response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment")
    assert client_for(alice).get(link).status_code == 404
    assert Client().get(link).status_code == 302  # to the login page
    # Nothing in the static or media roots: the file is stored encrypted elsewhere.
    from django.core.files.storage import storages

    with storages["evidence"].open(item.stored_as) as stored:
        assert stored.read() != PDF


def test_someone_who_is_not_an_appeal_reviewer_gets_404(system, alice):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    assert client_for(alice).get(f"/appeals/{case.reference}/").status_code == 404
    assert client_for(alice).get("/appeals/WB-NONE-NONE/").status_code == 404


def test_an_appeal_decision_without_reasons_is_refused_with_the_field_named(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    form = statement_opened(staff, case, task)
    response = staff.post(
        f"/appeals/{case.reference}/", {**form, "action": "decide", "outcome": "upheld"}
    )
    assert response.status_code == 422
    assert "give your reasons" in text(response)
    assert Appeal.objects.get().status == "under_review"
    # The form comes back with a new key: the next try is its own decision.
    assert key(response) != form["idempotency_key"]
    assert uuid.UUID(key(response))


def test_a_refused_file_is_explained_in_the_customers_language(system, alice):
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": "es"}
    case = decided_case(system, alice, subject=subject)
    client = Client()
    page = client.get(url(case))
    assert "Opcional." in text(page)  # the evidence help, formatted per request
    response = appeal_post(client, case, page, evidence=SimpleUploadedFile("a.pdf", b"MZ\x90"))
    assert response.status_code == 422
    assert "a.pdf no es un archivo PDF, JPEG o PNG." in text(response)


def test_a_system_without_an_appeals_queue_tells_the_customer_in_their_language(alice):
    """The operators forgot the appeals queue: the Spanish customer is told,
    in Spanish, that nothing was sent, and keeps their statement."""
    policy = {
        **factories.CLAIMS_POLICY,
        "queues": [q for q in factories.CLAIMS_POLICY["queues"] if q["slug"] != "appeals"],
    }
    system = factories.system_with_policy(policy)
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": "es"}
    case = decided_case(system, alice, subject=subject)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(client, case, page, statement="Mi escrito.")
    assert response.status_code == 503
    html = text(response)
    assert "Todavía no podemos recibir recursos en línea sobre esta decisión" in html
    assert "Mi escrito." in html  # the statement stays in the form
    assert not Appeal.objects.exists()


# --- Every state, in English and Spanish (issue 13 items 2 and 4) ------------------------------

WORDED_CLAIMS = {
    **factories.CLAIMS_POLICY,
    "appeals_allowed": 1,
    "appeal_queue": "appeals",
    "outcome_wording": {
        "approve": {"en": "Your claim is approved.", "es": "Su reclamación está aprobada."},
        "deny": {"en": "Your claim is denied.", "es": "Su reclamación está denegada."},
        "partial": {"en": "Your claim is paid in part.", "es": "Su reclamación se paga en parte."},
    },
    "external_review": {
        "en": "Ask the state insurance regulator for an external review.",
        "es": "Pida una revisión externa al regulador de seguros.",
    },
    "rules": [
        {**factories.CLAIMS_POLICY["rules"][0]},  # large-amount: no customer text, a default
        {
            **factories.CLAIMS_POLICY["rules"][1],  # adverse-needs-human
            "customer_text": {
                "en": "A person checks every denial before it is final.",
                "es": "Una persona revisa cada denegación antes de que sea definitiva.",
            },
            "ground": {
                "en": "Plan document, section 7.2 (claims review).",
                "es": "Documento del plan, apartado 7.2 (revisión de reclamaciones).",
            },
            "explanation_customer": {
                "en": "The procedure code and the diagnosis on the claim.",
                "es": "El código del procedimiento y el diagnóstico de la reclamación.",
            },
        },
        {**factories.CLAIMS_POLICY["rules"][2]},  # low-confidence
    ],
}
WORDED_SUPPORT = {
    **factories.SUPPORT_POLICY,
    "outcome_wording": {
        "answered": {"en": "We answered your question.", "es": "Respondimos a su pregunta."},
        "refused": {"en": "We could not help with this.", "es": "No pudimos ayudarle con esto."},
        "handoff": {
            "en": "A member of our team will contact you.",
            "es": "Una persona de nuestro equipo se pondrá en contacto con usted.",
        },
    },
    "external_review": {
        "en": "You can complain to the consumer authority.",
        "es": "Puede reclamar ante la autoridad de consumo.",
    },
}
CATALOG = [
    {
        "code": "CO-50",
        "description": "Not deemed a medical necessity",
        "customer_text": "Your plan pays for this only when it is medically necessary.",
        "customer_text_es": "Su plan lo paga solo cuando es médicamente necesario.",
        "ground": "Plan document, section 4.1 (medical necessity).",
        "ground_es": "Documento del plan, apartado 4.1 (necesidad médica).",
        "explanation": "The diagnosis did not show the service was needed.",
        "explanation_es": "El diagnóstico no mostraba que el servicio fuera necesario.",
    },
    {
        "code": "CO-97",
        "description": "Bundled",
        "customer_text": "This service is paid as part of another one.",
        "customer_text_es": "Este servicio se paga como parte de otro.",
    },
]
ANSWER = "Your parcel is on its way and will arrive on Friday."


def english_leftovers(html: str) -> list[str]:
    """The notice's English sentences (the catalog's msgids with a Spanish
    msgstr of their own) and the policies' English texts found in ``html``."""
    po = (Path(settings.BASE_DIR) / "locale/es/LC_MESSAGES/django.po").read_text()
    english = []
    for block in po.split("\n\n"):
        msgid = "".join(re.findall(r'"(.*)"', block.split("msgstr")[0].split("msgid", 1)[-1]))
        msgstr = "".join(re.findall(r'"(.*)"', block.split("msgstr", 1)[-1]))
        words = re.sub(r"%\(\w+\)s|<[^>]+>", "|", msgid).split("|")
        if msgstr and msgstr != msgid:
            english += [part.strip() for part in words if len(part.strip()) >= 18]
    for policy in (WORDED_CLAIMS, WORDED_SUPPORT):
        english += [texts["en"] for texts in policy["outcome_wording"].values()]
        english.append(policy["external_review"]["en"])
        for rule in policy["rules"]:
            english += [rule[key]["en"] for key in ("customer_text", "ground") if key in rule]
    english += [row["customer_text"] for row in CATALOG] + [CATALOG[0]["ground"]]
    return [sentence for sentence in english if sentence in html]


@pytest.fixture
def worded(db):
    from reviews.services import reason_codes_load

    claims = factories.system_with_policy(WORDED_CLAIMS)
    support = factories.system_with_policy(WORDED_SUPPORT)
    reason_codes_load(system=claims, rows=CATALOG, actor=factories.ACTOR)
    return claims, support


def render(case: Case, language: str) -> str:
    from reviews.models import Subject

    Subject.objects.filter(pk=case.subject_id).update(locale=language)
    response = Client().get(url(case))
    assert response.status_code == 200
    return text(response)


def internal_names(*policies) -> list[str]:
    names = ["qa-sample", "kill-switch", "system_stopped", "qa_sample"]
    for policy in policies:
        names += [rule["name"] for rule in policy["rules"]]
        names += [q["slug"] for q in policy["queues"]] + [q["name"] for q in policy["queues"]]
    # "Appeals" is a queue's name and also the heading of the page's own
    # section about appealing: not a leak.
    return [name for name in names if name != "Appeals"]


def day(moment, language: str) -> str:
    from django.utils import translation
    from django.utils.formats import date_format
    from django.utils.translation import pgettext

    with translation.override(language):
        return date_format(timezone.localtime(moment), pgettext("date format", "j F Y"))


def check_every_notice(html: str, language: str, case: Case):
    """What every notice says, whoever decided: an automated system (AI) took
    part; no internal rule or queue name; in Spanish, no English left."""
    assert ("(AI:" if language == "en" else "(IA:") in html
    for name in internal_names(WORDED_CLAIMS, WORDED_SUPPORT):
        assert name not in html, name
    if language == "es":
        assert english_leftovers(html) == []
    else:
        assert len(english_leftovers(html)) > 5  # the check finds English where there is some


def decided_states(claims, alice, carol):
    """Claims cases in every decided state, by name."""
    import uuid as uuid_

    from escalations.services import appeal_decide, appeal_file, appeal_statement_open
    from reviews.services.decisions import DecisionInput, decision_record

    medical = {
        "outcome": "deny",
        "summary": "Not medically necessary",
        "reasons": [{"code": "CO-50", "text": "Not deemed a medical necessity"}],
    }
    states = {"agreed": decided_case(claims, alice, 1, output=medical)}
    factories.ingest(claims, factories.claim_payload(2))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override", outcome="approve", reason_code="CO-97", rationale="Bundled."
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    states["overridden"] = Case.objects.get(pk=task.case_id)
    for n, outcome, final in (
        (3, "upheld", ""),
        (4, "overturned", "approve"),
        (5, "modified", "partial"),
    ):
        case = decided_case(claims, alice, n)
        appeal_file(
            case=case,
            statement="Please look again.",
            evidence=[],
            idempotency_key=uuid_.uuid4().hex,
        )
        task = task_claim_next(user=carol)
        appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
        appeal_decide(
            task_id=task.pk,
            user=carol,
            fencing_token=task.fencing_token,
            outcome=outcome,
            final_outcome=final,
            reason_code="CO-50" if outcome != "upheld" else "",
            reasons={"upheld": "It stays.", "overturned": "We pay.", "modified": "We pay part."}[
                outcome
            ],
            idempotency_key=uuid_.uuid4().hex,
        )
        states[f"appeal {outcome}"] = Case.objects.get(pk=case.pk)
    under_appeal = decided_case(claims, alice, 7)
    appeal_file(
        case=under_appeal, statement="Again.", evidence=[], idempotency_key=uuid_.uuid4().hex
    )
    states["under appeal"] = Case.objects.get(pk=under_appeal.pk)
    return states


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_decided_state_tells_the_decision_in_force_its_reasons_and_the_appeal_date(
    worded, alice, carol, language
):
    claims, _ = worded
    states = decided_states(claims, alice, carol)
    es = language == "es"
    for name, case in states.items():
        html = render(case, language)
        check_every_notice(html, language, case)
        # The reason codes, with their text in the customer's language.
        from escalations.selectors import notice_build

        for reason in notice_build(case=case, language=language).reasons:
            assert f"{reason.code})" in html and reason.text in html, (name, reason)
        if name == "agreed":
            assert ("Su reclamación está denegada." if es else "Your claim is denied.") in html
            assert (CATALOG[0]["customer_text_es"] if es else CATALOG[0]["customer_text"]) in html
            # The ground and what the automated system relied on, per reason and per rule.
            assert (CATALOG[0]["ground_es"] if es else CATALOG[0]["ground"]) in html
            assert (CATALOG[0]["explanation_es"] if es else CATALOG[0]["explanation"]) in html
            rule = WORDED_CLAIMS["rules"][1]
            assert rule["ground"][language] in html
            assert rule["explanation_customer"][language] in html
            assert rule["customer_text"][language] in html
            closes = case.finalized_at + timedelta(days=184)
            assert day(closes, language) in html  # the date by which to appeal
        if name == "overridden":
            assert ("Su reclamación está aprobada." if es else "Your claim is approved.") in html
            assert (CATALOG[1]["customer_text_es"] if es else CATALOG[1]["customer_text"]) in html
            assert ("cambió el resultado" if es else "changed the outcome") in html
            assert day(case.finalized_at + timedelta(days=184), language) in html
        if name.startswith("appeal "):
            outcome = name.split()[1]
            expected = {
                ("en", "upheld"): "The decision was upheld",
                ("en", "overturned"): "The decision was overturned",
                ("en", "modified"): "The decision was modified",
                ("es", "upheld"): "Se ha confirmado la decisión",
                ("es", "overturned"): "Se ha anulado la decisión",
                ("es", "modified"): "Se ha modificado la decisión",
            }[(language, outcome)]
            assert expected in html
            assert WORDED_CLAIMS["external_review"][language] in html
        if name == "under appeal":
            assert (
                "Ha recurrido esta decisión" if es else "You have appealed this decision"
            ) in html
            due = Appeal.objects.get(case=case).due_at
            assert day(due, language) in html


@pytest.mark.parametrize("language", ["en", "es"])
def test_under_review_qa_sample_stopped_contested_and_escalated_notices_promise_nothing_final(
    worded, alice, language
):
    from reviews.models import ReviewTask
    from reviews.services.decisions import DecisionInput, decision_record

    claims, _ = worded
    es = language == "es"
    pending = factories.ingest(claims, factories.claim_payload(1))
    sampled = factories.ingest(
        claims, factories.claim_payload(6, output={"outcome": "approve"}, confidence=0.99)
    )
    assert sampled.route["reason"] == "qa_sample"
    from workbench.models import AISystem

    AISystem.objects.filter(pk=claims.pk).update(stopped=True)
    stopped = factories.ingest(
        claims, factories.claim_payload(8, output={"outcome": "approve"}, confidence=0.99)
    )
    AISystem.objects.filter(pk=claims.pk).update(stopped=False)
    approved = factories.ingest(
        claims, factories.claim_payload(9, output={"outcome": "approve"}, confidence=0.99)
    )
    factories.api_client(claims).post(
        f"/api/v1/cases/{approved.reference}/contest", {"reason": "Wrong."}, "application/json"
    )
    escalated = factories.ingest(claims, factories.claim_payload(10))
    ReviewTask.objects.filter(case=escalated).update(priority=99)
    task = task_claim_next(user=alice)
    assert task.case_id == escalated.pk
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="escalate", rationale="Not sure."),
        idempotency_key="k-escalate",
    )
    cases = {
        "pending": pending,
        "qa": sampled,
        "stopped": stopped,
        "contested": Case.objects.get(pk=approved.pk),
        "escalated": Case.objects.get(pk=escalated.pk),
    }
    for name, case in cases.items():
        html = render(case, language)
        check_every_notice(html, language, case)
        assert (
            "Una persona está revisando" if es else "A person is reviewing this decision"
        ) in html
        assert ("Su reclamación" if es else "Your claim is") not in html  # no outcome yet
        due = max(t.due_at for t in case.tasks.filter(status__in=["open", "claimed"]))
        assert day(due, language) in html, name
        assert ("dentro de 184 días" if es else "within 184 days") in html or (
            "en un plazo de 184 días" in html
        )
    assert ("control de calidad" if es else "quality check") in render(sampled, language)
    assert ("estaba detenido" if es else "was paused") in render(stopped, language)
    assert ("se cuestionó" if es else "was questioned") in render(cases["contested"], language)
    assert WORDED_CLAIMS["rules"][1]["customer_text"][language] in render(pending, language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_after_a_missed_deadline_the_notice_says_so_and_what_happens_next(
    worded, alice, carol, language
):
    from escalations.services import appeal_file, tasks_escalate_overdue

    claims, _ = worded
    es = language == "es"
    appealed = decided_case(claims, alice, 2)
    appeal_file(case=appealed, statement="Again.", evidence=[], idempotency_key="k-late")
    appeal_due = Appeal.objects.get().due_at
    pending = factories.ingest(claims, factories.claim_payload(1))
    due = pending.tasks.get().due_at
    with time_machine.travel(max(due, appeal_due) + timedelta(hours=1)):
        tasks_escalate_overdue()
        late = render(pending, language)
        late_appeal = render(appealed, language)
    check_every_notice(late, language, pending)
    check_every_notice(late_appeal, language, appealed)
    missed = "no hemos cumplido ese plazo" if es else "we have missed that date"
    promise = "Recibirá una respuesta a más tardar" if es else "You will have an answer by"
    assert missed in late and day(due, language) in late
    assert promise not in late  # no date promised again
    assert ("Qué pasa ahora" if es else "What happens next") in late
    assert missed in late_appeal and day(appeal_due, language) in late_appeal
    assert promise not in late_appeal
    assert WORDED_CLAIMS["external_review"][language] in late_appeal


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_chat_notice_shows_our_answer_only_while_it_is_the_decision_in_force(
    worded, alice, language
):
    import uuid as uuid_

    from reviews.services.decisions import DecisionInput, decision_record

    _, support = worded
    es = language == "es"

    def chat(n, text, confidence=0.9):
        payload = factories.chat_payload(
            n, text=text, output={"outcome": "answered", "answer": ANSWER}, confidence=confidence
        )
        return factories.ingest(support, payload)

    alone = chat(1, "Where is my parcel? Thank you so much!")
    assert alone.status == "finalized"
    pending = chat(2, "I want a human, this is useless")
    overridden = chat(3, "Please get me a person")
    task = task_claim_next(user=alice)  # the customer who asked for a person: still pending
    assert task.case_id == pending.pk
    task = task_claim_next(user=alice)
    assert task.case_id == overridden.pk
    from reviews.services import reason_codes_load

    reason_codes_load(
        system=support,
        rows=[
            {
                "code": "needs-person",
                "description": "Needs a person",
                "customer_text": "Your request needs a person from our team.",
                "customer_text_es": "Su petición necesita a una persona de nuestro equipo.",
            }
        ],
        actor=factories.ACTOR,
    )
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override",
            outcome="handoff",
            rationale="Needs a person.",
            reason_code="needs-person",
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    overridden = Case.objects.get(pk=overridden.pk)
    assert overridden.final_outcome == "handoff"

    by_ai = render(alone, language)
    assert ANSWER in by_ai and ("Nuestra respuesta" if es else "Our answer") in by_ai
    check_every_notice(by_ai, language, alone)
    for case in (pending, overridden):
        html = render(case, language)
        check_every_notice(html, language, case)
        assert ANSWER not in html
        assert ("Nuestra respuesta" if es else "Our answer") not in html
    html = render(overridden, language)
    assert WORDED_SUPPORT["outcome_wording"]["handoff"][language] in html
    assert ("Su petición necesita a una persona" if es else "Your request needs a person") in html


@pytest.mark.parametrize("language", ["en", "es"])
def test_an_override_for_a_reason_outside_the_catalog_is_told_in_plain_words(
    worded, alice, language
):
    """The reviewer chose "other" (explained in their rationale, which stays
    internal): the customer reads a sentence, not the code "other"."""
    import uuid as uuid_

    from reviews.services.decisions import DecisionInput, decision_record

    claims, _ = worded
    factories.ingest(claims, factories.claim_payload(1))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override", outcome="approve", reason_code="other", rationale="Internal note."
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    html = render(Case.objects.get(pk=task.case_id), language)
    check_every_notice(html, language, task.case)
    plain = {
        "en": "gave a reason that is not on our list of standard reasons",
        "es": "indicó un motivo que no figura en nuestra lista de motivos habituales",
    }
    assert plain[language] in html
    assert "Internal note." not in html
    assert "code other" not in html and "código other" not in html
    assert "<li>other" not in html


def test_a_locale_with_no_translation_reads_english_and_a_plain_policy_text_stays_as_written(
    worded, alice
):
    from reviews.models import Subject

    claims, _ = worded
    case = decided_case(claims, alice, 1)
    Subject.objects.filter(pk=case.subject_id).update(locale="tlh")  # exists nowhere here
    html = text(Client().get(url(case)))
    assert '<html lang="en">' in Client().get(url(case)).content.decode()
    assert "Your claim is denied." in html and "(AI:" in html


def test_the_explanation_the_ai_system_sends_is_shown_in_the_customers_language(worded, alice):
    claims, _ = worded
    explanation = {
        "en": "Your plan excludes physiotherapy after 20 sessions.",
        "es": "Su plan excluye la fisioterapia tras 20 sesiones.",
    }
    case = decided_case(claims, alice, 1, explanation_customer=explanation)
    assert case.explanation_customer == explanation
    assert explanation["es"] in render(case, "es")
    assert explanation["en"] in render(case, "en")
    assert explanation["en"] not in render(case, "es")

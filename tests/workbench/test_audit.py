"""The justice audit screens (workbench/views/audit.py) and manage.py
justice_audit, on the hand-built claims trail and on the demo."""

import csv
import io
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tests import factories
from tests.workbench.metrics.handtrail import claims_trail
from workbench.metrics.scorecard import CSV_COLUMNS

RANGE = {"start": "2026-11-02", "end": "2026-11-15"}
URL = "/compliance/audit/claims-ai/"


@pytest.fixture
def dana(db):
    return factories.UserFactory(username="comp.dana", role="compliance")


def test_the_scorecard_page_plain_and_as_an_htmx_fragment(dana):
    claims_trail()
    client = factories.client_for(dana)
    page = client.get(URL, RANGE).content.decode()
    assert "<h1>Justice audit: claims-ai</h1>" in page
    assert "Distributive justice" in page and "Interactional justice" in page
    # The index with its parts beside it, never alone, and how many it used.
    assert re.search(r'<span class="index-value">61.3</span>', page)
    assert "from 4 of 6 parts" in page and "Did we listen to you? (1–5)" in page
    assert page.count("no data") >= 2  # sentiment, time to a human
    assert "Overturn rate on appeal" in page and "66.7%" in page and "≤ 20.0%" in page
    assert '<span class="badge status danger">fails</span>' in page
    assert (
        'href="/compliance/audit/claims-ai/cases/overturn_rate/?start=2026-11-02&amp;end=2026-11-15"'
        in page
    )
    assert "style=" not in page and "<style" not in page
    fragment = client.get(URL, RANGE, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="scorecard"') and "<html" not in fragment
    only_v1 = client.get(URL, {**RANGE, "version": "v1"}).content.decode()
    assert "model version <code>v1</code>" in only_v1
    assert '<option value="v1" selected>' in only_v1


def test_the_page_defaults_to_the_last_30_days_and_prints_without_navigation(dana):
    claims_trail()
    page = factories.client_for(dana).get(URL).content.decode()
    assert page.count('type="date"') == 2
    css = (Path(settings.BASE_DIR) / "static" / "css" / "workbench.css").read_text()
    printing = css[css.index("@media print") :]
    assert ".topbar" in printing and ".no-print" in printing  # no navigation on paper
    assert 'class="actions no-print"' in page and 'class="card range-form no-print"' in page


def test_the_csv_has_the_same_lines_and_the_index_parts(dana):
    claims_trail()
    response = factories.client_for(dana).get(URL, {**RANGE, "format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="justice-audit-claims-ai-2026-11-02-2026-11-15.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == CSV_COLUMNS
    by_line = {row["line"]: row for row in rows}
    overturn = by_line["overturn_rate"]
    assert (overturn["value"], overturn["low"], overturn["high"]) == ("0.6667", "0.2077", "0.9385")
    assert (overturn["threshold"], overturn["status"], overturn["n"]) == ("0.2000", "fails", "3")
    assert by_line["independence_violations"]["value"] == "1"
    assert by_line["connection_index"]["value"] == "61.3095"
    assert by_line["part:listened"]["value"] == "56.2500"  # 100 * (3.25 - 1) / 4
    assert by_line["part:sentiment"]["status"] == "no data"
    assert by_line["index:version:v1"]["n"] == "4"  # C1-C3: listened, explained, back, appeals
    assert {"index:version:v2", "index:queue:review", "index:queue:—"} <= set(by_line)


def test_the_cases_behind_a_line_link_to_the_compliance_case_view(dana):
    claims_trail()
    client = factories.client_for(dana)
    page = client.get(f"{URL}cases/overturn_rate/", RANGE).content.decode()
    assert '<a href="/cases/C1/view/">C1</a>' in page  # the view asks for a purpose
    assert re.findall(r'href="/cases/(C\d)/view/"', page) == ["C1", "C3", "C4"]
    assert "<td>yes</td>" in page and "<td>no</td>" in page
    assert client.get(f"{URL}cases/nothing/", RANGE).status_code == 404
    gap = client.get(f"{URL}cases/adverse_gap:metadata.region/", RANGE).content.decode()
    assert len(re.findall(r'href="/cases/C\d/view/"', gap)) == 6


def test_the_case_list_is_paginated(dana, monkeypatch):
    from workbench.views import audit

    claims_trail()
    monkeypatch.setattr(audit, "CASES_PER_PAGE", 2)
    client = factories.client_for(dana)
    first = client.get(f"{URL}cases/adverse_gap:metadata.region/", RANGE).content.decode()
    assert "Page 1 of 3" in first and "&amp;page=2" in first
    last = client.get(f"{URL}cases/adverse_gap:metadata.region/", {**RANGE, "page": 3})
    assert "Page 3 of 3" in last.content.decode()


def test_only_compliance_users_reach_the_scorecard(dana):
    claims_trail()
    reviewer = factories.UserFactory(role="reviewer")
    for url in (URL, f"{URL}cases/overturn_rate/", f"{URL}?format=csv"):
        assert factories.client_for(reviewer).get(url).status_code == 404
        assert Client().get(url).status_code == 302
    assert factories.client_for(dana).get("/compliance/audit/nobody/").status_code == 404


def test_the_dashboard_links_to_each_systems_scorecard(dana):
    claims_trail()
    page = factories.client_for(dana).get("/compliance/", RANGE).content.decode()
    assert (
        'href="/compliance/audit/claims-ai/?start=2026-11-02&amp;end=2026-11-15">'
        "Justice audit: claims-ai</a>" in page
    )


def test_the_demos_scorecard_opens_from_the_dashboard(dana):
    call_command("load_demo", "--cases", "60", stdout=StringIO())
    client = factories.client_for(dana)
    dashboard = client.get("/compliance/").content.decode()
    links = re.findall(r'href="(/compliance/audit/[^"]+)">Justice audit', dashboard)
    assert len(links) == 2
    for link in links:
        page = client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200
        text = page.content.decode()
        assert "Connection index" in text and "Procedural justice" in text
        assert 'class="badge status' in text


def test_the_command_writes_csv_or_html_and_refuses_bad_input(db, tmp_path):
    claims_trail()
    out = StringIO()
    call_command("justice_audit", "claims-ai", "--from", "2026-11-02", "--to", "2026-11-15",
                 stdout=out)  # fmt: skip
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == CSV_COLUMNS
    assert (rows[[r[5] for r in rows].index("deadline_breaches")][:6]) == [
        "claims-ai",
        "all",
        "2026-11-02",
        "2026-11-15",
        "procedural",
        "deadline_breaches",
    ]
    target = tmp_path / "audit.html"
    call_command("justice_audit", "claims-ai", "--from", "2026-11-02", "--to", "2026-11-15",
                 "--format", "html", "--output", str(target), stderr=StringIO())  # fmt: skip
    html = target.read_text()
    assert "<h1>Justice audit: claims-ai</h1>" in html and "Connection index" in html
    assert "/cases/" not in html  # on paper: no links to pages
    default = StringIO()
    call_command("justice_audit", "claims-ai", stdout=default)  # the last 30 days
    assert default.getvalue().startswith(",".join(CSV_COLUMNS))
    only_v2 = StringIO()
    call_command("justice_audit", "claims-ai", "--from", "2026-11-02", "--to", "2026-11-15",
                 "--model-version", "v2", stdout=only_v2)  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(only_v2.getvalue())))
    assert {row["model_version"] for row in rows} == {"v2"}
    # C4, C5, C6: C5's QA re-check is the only one, overridden.
    assert next(r for r in rows if r["line"] == "qa_error_rate")["detail"] == "1 of 1"
    with pytest.raises(CommandError, match="not a date"):
        call_command("justice_audit", "claims-ai", "--from", "2/11/2026")
    with pytest.raises(CommandError, match="after"):
        call_command("justice_audit", "claims-ai", "--from", "2026-11-16", "--to", "2026-11-15")
    with pytest.raises(CommandError, match="no AI system 'nobody'"):
        call_command("justice_audit", "nobody")

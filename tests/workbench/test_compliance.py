"""The compliance screens: the dashboard, the automation-bias report, the
transparency report (view and command)."""

import csv
import io
import logging
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from tests import factories
from tests.workbench.metrics.world import DAY, POLICY, build_world, denial
from workbench.models import MetricsCursor, TrailHead

RANGE = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=6)).isoformat()}


@pytest.fixture
def dana(db):
    return factories.UserFactory(username="comp.dana", role="compliance")


def test_the_dashboard_is_for_compliance_users_only(dana, caplog):
    reviewer = factories.UserFactory(username="rev.bob", role="reviewer")
    assert factories.client_for(dana).get("/compliance/").status_code == 200

    with caplog.at_level(logging.WARNING, logger="workbench.compliance"):
        for url in ("/compliance/", "/compliance/reviewers/", "/compliance/transparency/"):
            assert factories.client_for(reviewer).get(url).status_code == 404
    refused = [r for r in caplog.records if r.name == "workbench.compliance"]
    assert len(refused) == 3 and all(r.levelno == logging.WARNING for r in refused)
    assert "rev.bob" in refused[0].getMessage()

    anonymous = Client().get("/compliance/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=/compliance/")


def test_only_compliance_users_see_the_compliance_link(dana):
    reviewer = factories.UserFactory(role="reviewer")
    assert 'href="/compliance/"' in factories.client_for(dana).get("/").content.decode()
    assert 'href="/compliance/"' not in factories.client_for(reviewer).get("/").content.decode()


def test_the_dashboard_shows_the_figures_fresh_from_the_trail(dana):
    build_world()
    # No beat in the embedded mode: the page brings the rollups up to date itself.
    assert not MetricsCursor.objects.exists()
    page = factories.client_for(dana).get("/compliance/", RANGE).content.decode()
    assert MetricsCursor.objects.get().seq == TrailHead.objects.get().seq

    # The override rate with its Wilson interval; the appeals that changed the decision.
    assert '30.0% <span class="muted small ci">10.8%–60.3%, 3 of 10</span>' in page
    assert '50.0% <span class="muted small ci">9.5%–90.5%, 1 of 2</span>' in page
    assert "30.0% (10.8%–60.3%, 3 of 10)" in page  # in the chart's text alternative
    assert "<code>rule:adverse-needs-human</code>" in page
    assert "Fairness by segment" in page and "<code>metadata.region</code>" in page
    assert "+14.3 pp (south over north), 95% CI -31.1 pp to +52.5 pp" in page
    # The export form belongs on the dashboard (DESIGN §5b).
    assert re.search(r"<button[^>]*>Export trail</button>", page)
    assert (
        'href="/compliance/transparency/?start=2026-11-10&amp;end=2026-11-16&amp;format=csv"'
        in page
    )


def test_charts_are_inline_svg_with_a_text_alternative_and_no_inline_style_or_script(dana):
    build_world()
    page = factories.client_for(dana).get("/compliance/", RANGE).content.decode()
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) >= 5
    for svg in svgs:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert "<figcaption" in page
    assert "style=" not in page and "<style" not in page
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    assert "14 finalized by the AI" not in page  # 4 by the AI on the 10th, 10 routed
    assert "4 finalized by the AI, 11 routed to a person" in page


def test_the_date_range_filters_and_htmx_gets_the_figures_fragment(dana):
    build_world()
    client = factories.client_for(dana)
    later = {"start": "2026-11-11", "end": "2026-11-11"}
    fragment = client.get("/compliance/", later, headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert body.lstrip().startswith('<div id="metrics"') and "<html" not in body
    assert "From 11 Nov 2026 to 11 Nov 2026" in body
    assert "Export trail" not in body  # the form is outside the swapped region
    assert "<dt>Cases received</dt><dd>0</dd>" in body  # the appeals' day: no new cases
    full = client.get("/compliance/", later).content.decode()
    assert "<html" in full and '<div id="metrics"' in full


def test_the_dashboard_reads_a_fixed_number_of_queries(dana, django_assert_num_queries):
    system = factories.system_with_policy(POLICY)
    client = factories.client_for(dana)
    client.get("/compliance/")  # the first view rolls up the system's creation
    # session, user, groups; trail head, cursor; rollups, system names; segments; export form
    with django_assert_num_queries(9 + factories.trail_wait_queries()):
        client.get("/compliance/")
    build_world_more(system)
    client.get("/compliance/")  # catches up with the new events
    with django_assert_num_queries(9 + factories.trail_wait_queries()):
        client.get("/compliance/")


def build_world_more(system):
    for n in range(1, 30):
        denial(system, n, {"region": "west" if n % 2 else "east"})


def test_the_reviewers_page_flags_and_swaps_weeks_with_htmx(dana):
    client = factories.client_for(dana)
    page = client.get("/compliance/reviewers/", {"week": "2026-11-12"})
    assert page.status_code == 200
    assert "Week of 9 Nov 2026" in page.content.decode()  # the Monday of that week
    fragment = client.get(
        "/compliance/reviewers/", {"week": "2026-11-16"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="report">') and "Week of 16 Nov 2026" in fragment
    assert "No decisions this week." in fragment


def test_the_transparency_download_as_csv_and_html(dana):
    build_world()
    client = factories.client_for(dana)
    response = client.get("/compliance/transparency/", {**RANGE, "format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        (response["Content-Disposition"])
        == 'attachment; filename="transparency-2026-11-10-2026-11-16.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["system", "figure", "basis", "value"]
    assert ["claims-ai", "decisions", "", "14"] in rows
    assert ["claims-ai", "complaints_overturned", "deny", "1"] in rows
    html = client.get("/compliance/transparency/", {**RANGE, "format": "html"})
    assert html["Content-Type"] == "text/html; charset=utf-8"
    text = html.content.decode()
    assert "<h1>Transparency report</h1>" in text and "Article 24" in text
    assert "2: 1 upheld, 1 overturned, 0 modified" in text


def test_the_transparency_report_command_writes_csv_and_html(db, tmp_path):
    build_world()
    out = io.StringIO()
    call_command("transparency_report", "--from", "2026-11-10", "--to", "2026-11-16", stdout=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert ["claims-ai", "decisions_automated", "", "4"] in rows
    assert ["claims-ai", "complaints_received", "deny", "2"] in rows
    assert ["all", "reversals", "", "1"] in rows
    target = tmp_path / "report.html"
    call_command(
        "transparency_report",
        "--from",
        "2026-11-10",
        "--to",
        "2026-11-16",
        "--format",
        "html",
        "--output",
        str(target),
        stderr=io.StringIO(),
    )
    assert "Complaints by basis" in target.read_text()


def test_the_transparency_report_command_refuses_bad_dates(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("transparency_report", "--from", "10/11/2026", "--to", "2026-11-16")
    with pytest.raises(CommandError, match="after"):
        call_command("transparency_report", "--from", "2026-11-17", "--to", "2026-11-16")

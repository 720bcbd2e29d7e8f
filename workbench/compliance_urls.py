"""The compliance officer's screens (role ``compliance``, read-only): the
dashboard and its reports, and the trail export."""

from django.urls import path

from workbench.views import audit, compliance, exports

app_name = "compliance"

urlpatterns = [
    path("", compliance.dashboard, name="dashboard"),
    path("reviewers/", compliance.reviewers, name="reviewers"),
    path("transparency/", compliance.transparency, name="transparency"),
    path("audit/<slug:slug>/", audit.scorecard, name="audit"),
    path("audit/<slug:slug>/cases/<str:line>/", audit.scorecard_cases, name="audit-cases"),
    path("export/", exports.export_create, name="export"),
    path("export/<uuid:export_id>/", exports.export_detail, name="export-detail"),
    path("export/<uuid:export_id>/download/", exports.export_download, name="export-download"),
]

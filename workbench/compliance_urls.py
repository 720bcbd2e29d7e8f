"""The compliance officer's screens (role ``compliance``, read-only): the
dashboard and its reports, and the trail export."""

from django.urls import path

from workbench.views import compliance, exports

app_name = "compliance"

urlpatterns = [
    path("", compliance.dashboard, name="dashboard"),
    path("reviewers/", compliance.reviewers, name="reviewers"),
    path("transparency/", compliance.transparency, name="transparency"),
    path("export/", exports.export_create, name="export"),
    path("export/<uuid:export_id>/", exports.export_detail, name="export-detail"),
    path("export/<uuid:export_id>/download/", exports.export_download, name="export-download"),
]

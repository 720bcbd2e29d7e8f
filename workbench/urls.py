from django.contrib import admin
from django.urls import include, path

from reviews.api import router as cases_router
from workbench.api import api
from workbench.views import health

api.add_router("/cases", cases_router)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("compliance/", include("workbench.compliance_urls")),
    path("", include("escalations.urls")),
    # The reviewer's screens; "My queues" is the home page.
    path("", include("reviews.urls")),
]
